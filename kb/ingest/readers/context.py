"""What a reader may need beyond the bytes (a module of its own: readers and the registry both use it)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the parser child imports this module; pydantic-settings would add ~0.3 s to its start
    from kb.settings import Settings


@dataclass(frozen=True)
class ReadContext:
    """What a reader may need beyond the bytes: the kind asked for, the folder's kind, the parser limits."""

    kind: str | None = None  # --kind: every document of the file has this kind
    folder_kind: str | None = None  # implied by the corpus folder (plan/, papers/, needs/ ...)
    parse_timeout_s: float = 60.0
    parse_memory_mb: int = 3072
    zip_member_mb: int = 100
    table_max_rows: int = 200_000
    table_max_cells: int = 5_000_000
    ocr: bool = True
    ocr_engine: str = "rapidocr"
    ocr_page_timeout_s: float = 300.0
    ocr_dpi: int = 200
    redact_pii: bool = True
    # in the child: report(event, budget_s) tells the parent it is alive and how long the next step may take
    on_progress: Callable[[dict[str, Any], float], None] | None = None

    @classmethod
    def from_settings(cls, settings: Settings, kind: str | None = None, folder_kind: str | None = None) -> ReadContext:
        names = {f.name for f in dataclasses.fields(cls)} & set(type(settings).model_fields)
        return cls(kind=kind, folder_kind=folder_kind, **{n: getattr(settings, n) for n in names})

    def limits(self) -> dict[str, Any]:
        """The context as JSON for the child process (callbacks stay here)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "on_progress"}

    def report(self, event: dict[str, Any], budget_s: float | None = None) -> None:
        if self.on_progress is not None:
            self.on_progress(event, self.parse_timeout_s if budget_s is None else budget_s)
