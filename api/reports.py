"""A job's report as its client sees it: files by the names the client gave them, no server path anywhere."""

from __future__ import annotations

from pathlib import Path

from api import uploads
from api.errors import without_paths
from kb.models import FailedItem, IngestReport
from kb.settings import Settings


def client_failures(item: FailedItem, names: dict[str, list[str]], settings: Settings) -> list[FailedItem]:
    """A failure as the client knows the file: once under each name it was sent as, never by a server path
    (other uploads it names, e.g. the owner of a record id, by their clients' names too)."""
    stored = Path(item.path).name

    def shown(name: str) -> str:
        error = item.error.replace(item.path, name).replace(stored, name)
        return without_paths(uploads.with_client_names(error, settings.uploads_dir), settings)

    return [FailedItem(path=name, error=shown(name)) for name in names.get(item.path) or [stored]]


def public_report(report: IngestReport, names: dict[str, list[str]], settings: Settings) -> IngestReport:
    """The job's report with files named as clients named them (replaced documents' uploads included)."""
    by_file = {Path(p).name: ns[0] for p, ns in names.items()}

    def shown(file: str) -> str:
        return by_file.get(file) or uploads.original_name(str(settings.uploads_dir / file)) or file

    return report.model_copy(update={
        "failed": [c for f in report.failed for c in client_failures(f, names, settings)],
        "replaced": [r.model_copy(update={"source": shown(r.source), "by": shown(r.by)}) for r in report.replaced]})
