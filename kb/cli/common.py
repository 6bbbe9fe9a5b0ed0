"""What every command shares: settings, JSON output, progress bars, the error line."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
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


def progress(quiet: bool, label: str):  # type: ignore[no-untyped-def]
    """A tqdm wrapper on stderr, off with --quiet or when stderr is not a terminal."""
    from tqdm import tqdm

    def wrap(items: Iterable[T]) -> Iterable[T]:
        items = list(items)
        return tqdm(items, desc=label, unit="item", file=sys.stderr,
                    disable=quiet or not sys.stderr.isatty() or len(items) < 2)

    return wrap


class KBGroup(click.Group):
    """Turns our errors into one clear line and a non-zero exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KBError as exc:
            click.echo(f"error: {exc.message}", err=True)
            ctx.exit(2)
