#!/usr/bin/env python3
"""Build the cbm-kb review papers (PDF) from their Markdown-like sources.

Reads every ``corpus/papers/src/*.md`` file and writes
``corpus/papers/<stem>.pdf`` (A4, numbered sections, real tables,
page numbers in the footer).

Source format (a deliberately small subset of Markdown):

* ``# Title``                      -> paper title (first line)
* ``作者：...`` / ``Authors: ...``  -> author / status line under the title
* ``## 1 引言``                     -> section heading (level 1)
* ``### 2.1 ...``                  -> sub-section heading (level 2)
* ``| a | b |`` lines              -> a table; the first row is the header,
                                      a ``|---|---|`` separator row is skipped
* ``表1 ...`` / ``Table 1. ...``   -> table caption (centred, bold)
* ``[12] ...``                     -> reference entry (hanging indent)
* ``关键词：...`` / ``Keywords: ...`` -> keyword line (label in bold)
* any other non-blank lines        -> body paragraph; a blank line ends it

Fonts: Latin text uses DejaVu Sans (Debian package ``fonts-dejavu-core``);
Chinese characters fall back to Droid Sans Fallback (Debian package
``fonts-droid-fallback``).  Both are embedded as subsets.

The output is deterministic: the creation date, producer string and
document ID are fixed, so re-running the script on unchanged sources
gives byte-identical PDFs.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import re
import sys
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import Align, TextMode, WrapMode, XPos, YPos
from fpdf.fonts import FontFace

HERE = Path(__file__).resolve().parent
DEFAULT_SRC = HERE / "src"
DEFAULT_OUT = HERE

# Debian font packages: fonts-dejavu-core, fonts-droid-fallback
LATIN_REGULAR = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
LATIN_BOLD = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")
CJK_FONT = Path("/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf")

FIXED_DATE = _dt.datetime(2024, 1, 1, 0, 0, 0, tzinfo=_dt.timezone.utc)
PRODUCER = "cbm-kb build_papers.py (fpdf2)"

CJK_RE = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]")
REF_RE = re.compile(r"^\[(\d+)\]\s*(.*)$")
CAPTION_RE = re.compile(r"^(表\s*\d+|Table\s+\d+)")
META_RE = re.compile(r"^(作者[:：]|Authors?:)")
KEYWORDS_RE = re.compile(r"^(关键词|Keywords)\s*[:：]\s*(.*)$")

BODY_SIZE = 10
TITLE_SIZE = 17
H2_SIZE = 13.5
H3_SIZE = 11.5
TABLE_SIZE = 8.5
REF_SIZE = 9


# --------------------------------------------------------------------------
# parsing
# --------------------------------------------------------------------------
def _join_lines(lines: list[str]) -> str:
    """Join wrapped source lines; no space between two CJK characters."""
    out = ""
    for line in lines:
        line = line.strip()
        if not out:
            out = line
        elif CJK_RE.match(out[-1]) and CJK_RE.match(line[0]):
            out += line
        else:
            out += " " + line
    return out


def parse(text: str) -> list[tuple]:
    """Turn the source text into a list of (kind, payload) blocks."""
    blocks: list[tuple] = []
    para: list[str] = []
    table: list[list[str]] = []

    def flush_para():
        if para:
            blocks.append(("para", _join_lines(para)))
            para.clear()

    def flush_table():
        if table:
            blocks.append(("table", [row[:] for row in table]))
            table.clear()

    for raw in text.splitlines():
        line = raw.rstrip()
        stripped = line.strip()
        if stripped.startswith("|"):
            flush_para()
            cells = [c.strip() for c in stripped.strip("|").split("|")]
            if all(re.fullmatch(r":?-{2,}:?", c) for c in cells if c):
                continue  # separator row
            table.append(cells)
            continue
        flush_table()
        if not stripped:
            flush_para()
            continue
        if stripped.startswith("### "):
            flush_para()
            blocks.append(("h3", stripped[4:].strip()))
        elif stripped.startswith("## "):
            flush_para()
            blocks.append(("h2", stripped[3:].strip()))
        elif stripped.startswith("# "):
            flush_para()
            blocks.append(("title", stripped[2:].strip()))
        elif META_RE.match(stripped):
            flush_para()
            blocks.append(("meta", stripped))
        elif CAPTION_RE.match(stripped):
            flush_para()
            blocks.append(("caption", stripped))
        elif REF_RE.match(stripped):
            flush_para()
            m = REF_RE.match(stripped)
            blocks.append(("ref", (m.group(1), m.group(2))))
        elif KEYWORDS_RE.match(stripped):
            flush_para()
            m = KEYWORDS_RE.match(stripped)
            blocks.append(("keywords", (m.group(1), m.group(2))))
        else:
            para.append(stripped)
    flush_para()
    flush_table()
    return blocks



# characters that must not start a line / must not end a line (CJK kinsoku)
NO_START = set("，。、；：？！）》」』】〕”’%‰℃·…—,.;:?!)]}")
NO_END = set("（《「『【〔“‘([{")
TOKEN_RE = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]| +|[^\s\u3000-\u303f\u3400-\u9fff\uff00-\uffef]+")


def cjk_lines(pdf: FPDF, text: str, width: float) -> list[str]:
    """Greedy line breaking for mixed Chinese/Latin text.

    Breaks between any two CJK characters and at spaces, but never inside a
    Latin word or number (e.g. "2091.5", "m³/d") and never puts closing
    punctuation at the start of a line.
    """
    tokens = TOKEN_RE.findall(text)
    lines: list[list[str]] = [[]]
    cur_w = 0.0
    for tok in tokens:
        tw = pdf.get_string_width(tok)
        line = lines[-1]
        if tok.isspace():
            if line:
                line.append(tok)
                cur_w += tw
            continue
        if cur_w + tw <= width or not line:
            line.append(tok)
            cur_w += tw
            continue
        # overflow: start a new line, respecting kinsoku rules
        carry: list[str] = []
        if tok[0] in NO_START and line:
            carry.append(line.pop())
        while line and line[-1][-1:] in NO_END:
            carry.insert(0, line.pop())
        while line and line[-1].isspace():
            line.pop()
        if not line:  # could not satisfy the rules; just break here
            line.extend(carry)
            carry = []
        new = carry + [tok]
        lines.append(new)
        cur_w = sum(pdf.get_string_width(t) for t in new)
    return ["".join(l).rstrip() for l in lines if l]


# --------------------------------------------------------------------------
# rendering
# --------------------------------------------------------------------------
class PaperPDF(FPDF):
    def __init__(self, running_title: str, cjk: bool):
        super().__init__(orientation="P", unit="mm", format="A4")
        self.running_title = running_title
        self.cjk = cjk
        self.wrap = WrapMode.CHAR if cjk else WrapMode.WORD
        self.set_margins(20, 20, 20)
        self.set_auto_page_break(auto=True, margin=20)
        self.add_font("dejavu", "", str(LATIN_REGULAR))
        self.add_font("dejavu", "B", str(LATIN_BOLD))
        self.add_font("droid", "", str(CJK_FONT))
        self.set_fallback_fonts(["droid"], exact_match=False)
        self.set_font("dejavu", "", BODY_SIZE)

    def _render_styled_text_line(self, *args, **kwargs):
        # Work-around for fpdf2 2.8.x with fallback fonts: a line whose first
        # fragment uses the fallback font sets the main font only inside its
        # own q/Q-wrapped text object, after which fpdf2 believes the font is
        # still active and the next line is emitted without any Tf operator
        # ("No font in show").  Forcing a font re-selection per line avoids it.
        self.current_font_is_set_on_page = False
        result = super()._render_styled_text_line(*args, **kwargs)
        self.current_font_is_set_on_page = False
        return result

    # running header from page 2 on
    def header(self):
        if self.page_no() == 1:
            return
        self.set_font("dejavu", "", 8)
        self.set_text_color(110, 110, 110)
        self.cell(0, 5, self.running_title, align=Align.C,
                  new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_draw_color(170, 170, 170)
        self.set_line_width(0.2)
        y = self.get_y() + 1
        self.line(self.l_margin, y, self.w - self.r_margin, y)
        self.set_y(y + 4)
        self.set_text_color(0, 0, 0)
        self.set_draw_color(0, 0, 0)

    def footer(self):
        self.set_y(-15)
        self.set_font("dejavu", "", 9)
        self.set_text_color(90, 90, 90)
        if self.cjk:
            label = f"第 {self.page_no()} 页 / 共 {{nb}} 页"
        else:
            label = f"Page {self.page_no()} of {{nb}}"
        self.cell(0, 8, label, align=Align.C)
        self.set_text_color(0, 0, 0)

    # helpers -----------------------------------------------------------
    def heavy(self, on: bool, width: float = 0.12):
        """Simulated bold (stroke + fill) so CJK glyphs look bold too."""
        if on:
            self.text_mode = TextMode.FILL_STROKE
            self.set_line_width(width)
        else:
            self.text_mode = TextMode.FILL
            self.set_line_width(0.2)
            # fpdf2 does not emit "0 Tr" when returning to FILL; the render
            # mode is graphics state and would leak into the following text.
            self._out("0 Tr")

    def text_block(self, w: float, h: float, text: str, align=Align.L):
        """multi_cell with CJK-aware line breaking in Chinese documents."""
        if self.cjk:
            text = "\n".join(cjk_lines(self, text, w - 2 * self.c_margin - 0.01))
            if align == Align.J:
                align = Align.L
        self.multi_cell(w, h, text, align=align, wrapmode=self.wrap,
                        new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def keep_space(self, needed_mm: float):
        if self.get_y() + needed_mm > self.page_break_trigger:
            self.add_page()


def _col_widths(rows: list[list[str]]) -> tuple[float, ...]:
    """Relative column widths from content length (CJK counts double)."""
    ncol = max(len(r) for r in rows)
    weights = []
    for c in range(ncol):
        longest = 0
        for r in rows:
            cell = r[c] if c < len(r) else ""
            n = sum(2 if CJK_RE.match(ch) else 1 for ch in cell)
            longest = max(longest, n)
        weights.append(min(max(longest, 6), 60))
    return tuple(float(w) for w in weights)


def render(src: Path, out: Path) -> int:
    text = src.read_text(encoding="utf-8")
    blocks = parse(text)
    title = next((b[1] for b in blocks if b[0] == "title"), src.stem)
    cjk = len(CJK_RE.findall(text)) > 200
    lh = 5.8 if cjk else 5.0  # body line height (mm)

    pdf = PaperPDF(running_title=title, cjk=cjk)
    pdf.set_title(title)
    pdf.set_author("cbm-kb 项目组" if cjk else "cbm-kb project team")
    pdf.set_subject("Review (not peer reviewed)" if not cjk else "综述（非同行评审）")
    pdf.set_creator("corpus/papers/build_papers.py")
    pdf.set_producer(PRODUCER)
    pdf.set_lang("zh-CN" if cjk else "en")
    pdf.set_creation_date(FIXED_DATE)
    digest = hashlib.md5(text.encode("utf-8")).hexdigest().upper()
    pdf.file_id = lambda: f"<{digest}><{digest}>"
    pdf.add_page()

    epw = pdf.epw
    in_refs = False
    for kind, payload in blocks:
        if kind == "title":
            pdf.set_font("dejavu", "B", TITLE_SIZE)
            pdf.heavy(True, 0.18)
            pdf.text_block(epw, 9, payload, align=Align.C)
            pdf.heavy(False)
            pdf.ln(2)
        elif kind == "meta":
            pdf.set_font("dejavu", "", 10)
            pdf.set_text_color(60, 60, 60)
            pdf.text_block(epw, 6, payload, align=Align.C)
            pdf.set_text_color(0, 0, 0)
            pdf.ln(3)
        elif kind == "h2":
            in_refs = payload in ("参考文献", "References")
            pdf.keep_space(22)
            pdf.ln(3)
            pdf.set_font("dejavu", "B", H2_SIZE)
            pdf.heavy(True, 0.14)
            pdf.text_block(epw, 8, payload, align=Align.L)
            pdf.heavy(False)
            pdf.ln(1.5)
        elif kind == "h3":
            pdf.keep_space(18)
            pdf.ln(1.5)
            pdf.set_font("dejavu", "B", H3_SIZE)
            pdf.heavy(True, 0.1)
            pdf.text_block(epw, 7, payload, align=Align.L)
            pdf.heavy(False)
            pdf.ln(1)
        elif kind == "keywords":
            label, rest = payload
            pdf.set_font("dejavu", "B", BODY_SIZE)
            pdf.heavy(True, 0.1)
            sep = "：" if cjk else ": "
            lw = pdf.get_string_width(label + sep) + 1
            pdf.cell(lw, lh, label + sep)
            pdf.heavy(False)
            pdf.set_font("dejavu", "", BODY_SIZE)
            pdf.text_block(epw - lw, lh, rest, align=Align.L)
            pdf.ln(2)
        elif kind == "caption":
            pdf.keep_space(20)
            pdf.ln(1)
            pdf.set_font("dejavu", "B", 9.5)
            pdf.heavy(True, 0.08)
            pdf.text_block(epw, 6, payload, align=Align.C)
            pdf.heavy(False)
            pdf.ln(1)
        elif kind == "table":
            pdf.set_font("dejavu", "", TABLE_SIZE)
            pdf.set_line_width(0.25)
            with pdf.table(
                col_widths=_col_widths(payload),
                line_height=4.6,
                text_align="LEFT",
                wrapmode=pdf.wrap,
                headings_style=FontFace(emphasis="BOLD", fill_color=(225, 230, 238)),
                cell_fill_color=(247, 247, 247),
                cell_fill_mode="ROWS",
                padding=1.2,
                width=epw,
            ) as table:
                for row in payload:
                    r = table.row()
                    for cell in row:
                        r.cell(cell)
            pdf.set_line_width(0.2)
            pdf.ln(3)
        elif kind == "ref":
            num, body = payload
            pdf.set_font("dejavu", "", REF_SIZE)
            label = f"[{num}]"
            lw = 9
            pdf.keep_space(10)
            x0 = pdf.l_margin
            pdf.set_x(x0)
            pdf.cell(lw, 5, label)
            pdf.text_block(epw - lw, 5, body, align=Align.L)
            pdf.ln(0.8)
        elif kind == "para":
            size = REF_SIZE if in_refs else BODY_SIZE
            pdf.set_font("dejavu", "", size)
            pdf.text_block(epw, lh, payload, align=Align.J)
            pdf.ln(2)
    out.parent.mkdir(parents=True, exist_ok=True)
    pdf.output(str(out))
    return pdf.pages_count


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=(
            "Render the cbm-kb review papers (corpus/papers/src/*.md) to A4 PDFs "
            "in corpus/papers/. Needs the Debian packages fonts-dejavu-core and "
            "fonts-droid-fallback and the Python package fpdf2."
        )
    )
    ap.add_argument("--src", type=Path, default=DEFAULT_SRC,
                    help="directory with the *.md sources (default: src/ next to this script)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT,
                    help="output directory for the PDFs (default: the directory of this script)")
    ap.add_argument("names", nargs="*",
                    help="only build these stems (e.g. hz_wells_zh); default: all")
    args = ap.parse_args(argv)

    for f in (LATIN_REGULAR, LATIN_BOLD, CJK_FONT):
        if not f.is_file():
            print(f"missing font {f}; install fonts-dejavu-core and "
                  "fonts-droid-fallback (apt-get install -y ...)", file=sys.stderr)
            return 2
    sources = sorted(args.src.glob("*.md"))
    if args.names:
        sources = [s for s in sources if s.stem in set(args.names)]
    if not sources:
        print(f"no sources found in {args.src}", file=sys.stderr)
        return 1
    for src in sources:
        out = args.out / f"{src.stem}.pdf"
        pages = render(src, out)
        print(f"{out}  ({pages} pages)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
