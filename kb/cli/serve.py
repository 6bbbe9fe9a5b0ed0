"""Serving and exporting: serve, export-model."""

from __future__ import annotations

from pathlib import Path

import click

from kb.cli import remote
from kb.cli.common import settings
from kb.settings import get_settings


@click.command("export-model")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
def export_model(out_dir: Path) -> None:
    """Write the bundled multilingual-e5-small as a sentence-transformers model directory.

    Then KB_EMBED_MODEL=OUT_DIR uses it through sentence-transformers (torch batching).
    """
    from kb.embed.export import export_e5

    path = export_e5(out_dir)
    click.echo(f"wrote {path}")


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Processes; each loads the model once and has its own rate limiter.")
@click.option("--dev", is_flag=True, help="Allow writes without KB_API_KEYS (logs a warning); trusted machines only.")
def serve(host: str, port: int, workers: int, dev: bool) -> None:
    """Serve the HTTP API and the web page at http://HOST:PORT/ (API docs at /docs).

    Writes (uploads, deletes) need a key from KB_API_KEYS; the server refuses to start
    with writes enabled and no key unless --dev is given. Reads are public unless
    KB_PUBLIC_READ=false.
    """
    import os

    import uvicorn

    from kb.settings import check_config

    # idle OpenMP threads of the model sleep instead of spinning: spinning starves the event loop and
    # other processes (measured p95 of POST /search on a busy 2-core box: 2.5 s spinning, 70 ms passive)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if workers > 1 and settings().embed_threads == 0:
        # one model per worker: a thread per core in each oversubscribes the machine (measured on
        # 2 cores, 2 workers, 16 clients, 10k chunks: 19 q/s with 2 threads each, 36 q/s with 1)
        os.environ["KB_EMBED_THREADS"] = str(max(1, (os.cpu_count() or 1) // workers))
    if dev:
        os.environ["KB_DEV"] = "1"  # worker processes read their settings from the environment
        get_settings.cache_clear()
    else:
        check_config(settings())  # refuse here, with one clear line, rather than in every worker
    remote.advertise(settings(), host, port)  # kb search/ask/match of this KB_HOME then ask this server
    # h11 with a head limit: httptools has none, and a 100 MB header held every request for 11.5 s (a request
    # over the limit gets 400 and the connection closes); POST /search measured alike with both (docs/RELIABILITY.md)
    uvicorn.run("api.app:app_from_env", factory=True, host=host, port=port, workers=workers, log_level="info",
                http="h11", h11_max_incomplete_event_size=settings().max_header_kb * 1024)



COMMANDS = [export_model, serve]
