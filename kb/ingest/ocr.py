"""OCR of rendered PDF pages, offline: RapidOCR (PP-OCRv4 models inside its wheel) or Debian's tesseract.

Pages are rendered with pypdfium2 (PDFium: renders what pypdf can only parse). Runs inside the parser's
child process (kb/ingest/sandbox.py), which gives each page its own time limit. docs/INGEST.md has the
measured error rate and speed of both engines; KB_OCR_ENGINE picks one.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from kb.errors import ExtractionError

ENGINES = ("rapidocr", "tesseract")
_TESSERACT_LANGS = "chi_sim+eng"


@dataclass(frozen=True)
class Box:
    """One recognised text line: its bounding box (pixels) and text."""

    x0: float
    y0: float
    x1: float
    y1: float
    text: str


def _line_text(boxes: list[Box]) -> str:
    return " ".join(b.text for b in sorted(boxes, key=lambda b: b.x0))


def _rows(boxes: list[Box]) -> list[str]:
    """Boxes grouped into text rows (a box joins the row whose vertical middle it overlaps), top to bottom."""
    rows: list[list[Box]] = []
    for b in sorted(boxes, key=lambda b: (b.y0 + b.y1) / 2):
        mid = (b.y0 + b.y1) / 2
        if rows and rows[-1][0].y0 <= mid <= rows[-1][0].y1:
            rows[-1].append(b)
        else:
            rows.append([b])
    return [_line_text(r) for r in rows]


def _gutter(boxes: list[Box], width: float) -> float | None:
    """The x of a column gutter between 30 % and 70 % of the page that no narrow box crosses, if any."""
    narrow = [b for b in boxes if b.x1 - b.x0 < 0.55 * width]
    for frac in (0.5, 0.45, 0.55, 0.4, 0.6, 0.35, 0.65):
        x = frac * width
        if not any(b.x0 < x < b.x1 for b in narrow) and \
                min(sum(b.x1 <= x for b in narrow), sum(b.x0 >= x for b in narrow)) >= 3:
            return x
    return None


def reading_order(boxes: list[Box], width: float) -> list[str]:
    """Text lines in reading order: one column top to bottom, or two columns (left, then right) between
    full-width lines such as titles, which stay in place."""
    gutter = _gutter(boxes, width)
    if gutter is None:
        return _rows(boxes)
    out: list[str] = []
    band: list[Box] = []
    for b in sorted(boxes, key=lambda b: b.y0):
        if b.x0 < gutter < b.x1:  # a full-width line ends the two-column band above it
            out += _rows([x for x in band if x.x1 <= gutter]) + _rows([x for x in band if x.x1 > gutter])
            out.append(b.text)
            band = []
        else:
            band.append(b)
    return out + _rows([x for x in band if x.x1 <= gutter]) + _rows([x for x in band if x.x1 > gutter])


@lru_cache(maxsize=1)
def _rapidocr() -> Any:
    """One RapidOCR per process; its models load from its own wheel (no download: checked in tests)."""
    from rapidocr_onnxruntime import RapidOCR

    return RapidOCR()


def rapidocr_boxes(image: Any) -> list[Box]:
    import numpy as np

    result, _ = _rapidocr()(np.asarray(image.convert("RGB")))
    out = []
    for quad, text, _score in result or []:
        xs, ys = [p[0] for p in quad], [p[1] for p in quad]
        out.append(Box(min(xs), min(ys), max(xs), max(ys), str(text)))
    return out


def tesseract_text(image: Any, timeout_s: float) -> str:
    exe = shutil.which("tesseract")
    if exe is None:
        raise ExtractionError("OCR with KB_OCR_ENGINE=tesseract needs Debian's tesseract-ocr and "
                              "tesseract-ocr-chi-sim (make install-tools)")
    buf = io.BytesIO()
    image.save(buf, "PNG")
    proc = subprocess.run([exe, "-", "-", "-l", _TESSERACT_LANGS, "--psm", "3"], input=buf.getvalue(),
                          capture_output=True, timeout=timeout_s, check=False)
    if proc.returncode != 0:
        raise ExtractionError(f"tesseract failed: {proc.stderr.decode('utf-8', 'replace')[-200:]}")
    return proc.stdout.decode("utf-8", "replace")


def ocr_image(image: Any, engine: str, timeout_s: float = 120.0) -> str:
    """The text of a page image, lines in reading order."""
    if engine == "rapidocr":
        return "\n".join(reading_order(rapidocr_boxes(image), image.width))
    if engine == "tesseract":
        return tesseract_text(image, timeout_s)
    raise ValueError(f"unknown OCR engine {engine!r}; valid: {', '.join(ENGINES)}")


class PageImages:
    """A PDF's pages as images (pypdfium2): a small grey rendering to measure ink, a full one to OCR."""

    def __init__(self, data: bytes) -> None:
        import pypdfium2

        self.pdf = pypdfium2.PdfDocument(data)

    def __len__(self) -> int:
        return len(self.pdf)

    def size_pt(self, i: int) -> tuple[float, float]:
        w, h = self.pdf[i].get_size()
        return float(w), float(h)

    def ink(self, i: int) -> float:
        """Share of dark pixels (under 128) of page ``i`` rendered at 72 dpi (kb.lang.repair.expected_chars)."""
        import numpy as np

        img = self.pdf[i].render(scale=1.0, grayscale=True).to_pil()
        return float((np.asarray(img.convert("L")) < 128).mean())

    def image(self, i: int, dpi: int) -> Any:
        return self.pdf[i].render(scale=dpi / 72, grayscale=True).to_pil()

    def close(self) -> None:
        self.pdf.close()
