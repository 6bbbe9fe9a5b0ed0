"""Pages made from known text, for the OCR benchmark, the archive evaluation and the tests.

``render_page`` draws text with a CJK font the way a page is printed, ``scan`` degrades the image the way
a 150-300 dpi scanner does (skew, blur, speckle, JPEG), and ``image_pdf`` wraps page images in a PDF,
optionally with an invisible text layer: a clean one, an old OCR's (a space between CJK characters, units
broken over lines) or a broken font map's (every glyph in the Armenian block, as some CNKI files have).
"""

from __future__ import annotations

import io
import random
import zlib
from pathlib import Path
from typing import Any

FONTS = {  # Debian's fonts-noto-cjk; Droid Sans Fallback (fonts-droid-fallback) has no Latin glyphs
    "noto-serif": "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
    "noto-sans": "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
}
A4_PT = (595, 842)


def font_path(name: str = "noto-serif") -> str:
    path = FONTS[name]
    if not Path(path).exists():
        raise FileNotFoundError(f"{path} missing: make install-tools installs fonts-noto-cjk")
    return path


def _wrap(draw: Any, text: str, font: Any, width: int) -> list[str]:
    lines: list[str] = []
    for para in text.split("\n"):
        line = ""
        for ch in para:
            if line and draw.textlength(line + ch, font=font) > width:
                lines.append(line)
                line = ""
            line += ch
        lines.append(line)
    return lines


def render_page(text: str, dpi: int = 200, font: str = "noto-serif", size_pt: float = 10.5,
                columns: int = 1) -> Any:
    """An A4 page image (PIL, greyscale) of ``text`` set in ``size_pt`` type, in one or two columns."""
    from PIL import Image, ImageDraw, ImageFont

    w, h = (round(x * dpi / 72) for x in A4_PT)
    img = Image.new("L", (w, h), 255)
    draw = ImageDraw.Draw(img)
    face = ImageFont.truetype(font_path(font), round(size_pt * dpi / 72))
    margin, gap = round(w * 0.12), round(w * 0.04)
    col_w = (w - 2 * margin - gap * (columns - 1)) // columns
    lines = _wrap(draw, text, face, col_w)
    step = round(size_pt * dpi / 72 * 1.7)
    per_col = (h - 2 * margin) // step
    for i, line in enumerate(lines[: per_col * columns]):
        col, row = divmod(i, per_col)
        draw.text((margin + col * (col_w + gap), margin + row * step), line, font=face, fill=0)
    return img


def scan(img: Any, seed: int = 0, skew_deg: float = 0.4, blur: float = 0.6, speckle: float = 0.002,
         quality: int = 60) -> Any:
    """The image as a flatbed scan leaves it: slightly rotated and blurred, speckled, JPEG-compressed."""
    from PIL import Image, ImageFilter

    rnd = random.Random(seed)
    img = img.rotate(skew_deg, fillcolor=255, resample=Image.BICUBIC).filter(ImageFilter.GaussianBlur(blur))
    px = img.load()
    for _ in range(int(img.width * img.height * speckle)):
        px[rnd.randrange(img.width), rnd.randrange(img.height)] = rnd.choice((0, 255))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buf.getvalue()))


# ---- PDFs written by hand: an image per page and, optionally, an invisible text layer ----------------------

def _obj(n: int, body: bytes) -> bytes:
    return b"%d 0 obj\n" % n + body + b"\nendobj\n"


def _stream(data: bytes, extra: bytes = b"", compress: bool = True) -> bytes:
    if compress:
        data, extra = zlib.compress(data), extra + b" /Filter /FlateDecode"
    return b"<< /Length %d%s >>\nstream\n" % (len(data), extra) + data + b"\nendstream"


def _to_unicode(chars: list[str]) -> bytes:
    """A ToUnicode CMap sending 2-byte code i to ``chars[i]``."""
    lines = [f"<{i + 1:04X}> <{''.join(f'{u:04X}' for u in _utf16(c))}>" for i, c in enumerate(chars)]
    body = "\n".join(f"{len(part)} beginbfchar\n" + "\n".join(part) + "\nendbfchar"
                     for part in (lines[k : k + 100] for k in range(0, len(lines), 100)))
    return ("/CIDInit /ProcSet findresource begin 12 dict begin begincmap /CMapName /KB def "
            "1 begincodespacerange <0000> <FFFF> endcodespacerange\n" + body +
            "\nendcmap CMapName currentdict /CMap defineresource pop end end").encode("ascii")


def _utf16(c: str) -> list[int]:
    b = c.encode("utf-16-be")
    return [int.from_bytes(b[i : i + 2], "big") for i in range(0, len(b), 2)]


def image_pdf(pages: list[tuple[Any, list[str] | None]]) -> bytes:
    """A PDF of page images (JPEG), each with an optional invisible text layer of the given lines."""
    chars = sorted({c for _, lines in pages for line in lines or [] for c in line})
    code = {c: i + 1 for i, c in enumerate(chars)}
    objs: dict[int, bytes] = {
        3: b"<< /Type /Font /Subtype /Type0 /BaseFont /KBLayer /Encoding /Identity-H "
           b"/DescendantFonts [4 0 R] /ToUnicode 5 0 R >>",
        4: b"<< /Type /Font /Subtype /CIDFontType2 /BaseFont /KBLayer /CIDSystemInfo << /Registry (Adobe) "
           b"/Ordering (Identity) /Supplement 0 >> /FontDescriptor 6 0 R /DW 1000 >>",
        5: _stream(_to_unicode(chars)),
        6: b"<< /Type /FontDescriptor /FontName /KBLayer /Flags 4 /FontBBox [0 0 1000 1000] /ItalicAngle 0 "
           b"/Ascent 880 /Descent -120 /CapHeight 700 /StemV 80 >>",
    }
    kids = []
    for k, (img, lines) in enumerate(pages):
        page_n, content_n, image_n = 7 + 3 * k, 8 + 3 * k, 9 + 3 * k
        kids.append(b"%d 0 R" % page_n)
        buf = io.BytesIO()
        img.convert("L").save(buf, "JPEG", quality=85)
        objs[image_n] = _stream(buf.getvalue(), b" /Type /XObject /Subtype /Image /Width %d /Height %d "
                                b"/ColorSpace /DeviceGray /BitsPerComponent 8 /Filter /DCTDecode" %
                                img.size, compress=False)
        ops = [b"q %d 0 0 %d 0 0 cm /Im0 Do Q" % A4_PT]
        for i, line in enumerate(lines or []):  # invisible (3 Tr), as OCR layers are
            hexed = "".join(f"{code[c]:04X}" for c in line).encode("ascii")
            ops.append(b"BT 3 Tr /F1 10 Tf 70 %d Td <%s> Tj ET" % (A4_PT[1] - 80 - 16 * i, hexed))
        objs[content_n] = _stream(b"\n".join(ops))
        objs[page_n] = (b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] /Contents %d 0 R "
                        b"/Resources << /Font << /F1 3 0 R >> /XObject << /Im0 %d 0 R >> >> >>"
                        % (*A4_PT, content_n, image_n))
    objs[1] = b"<< /Type /Catalog /Pages 2 0 R >>"
    objs[2] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(kids), len(pages))
    return _assemble(objs)


def _assemble(objs: dict[int, bytes]) -> bytes:
    out = bytearray(b"%PDF-1.5\n%\xe2\xe3\xcf\xd3\n")
    offsets = {}
    for n in sorted(objs):
        offsets[n] = len(out)
        out += _obj(n, objs[n])
    xref = len(out)
    size = max(objs) + 1
    out += b"xref\n0 %d\n0000000000 65535 f \n" % size
    out += b"".join(b"%010d 00000 n \n" % offsets[n] if n in offsets else b"0000000000 65535 f \n"
                    for n in range(1, size))
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (size, xref)
    return bytes(out)


def spaced_layer(text: str, width: int = 38) -> list[str]:
    """An old OCR's text layer of ``text``: a space after every CJK character, lines cut at ``width``
    characters (so numbers and units break over lines as in ``12.6 m`` / ``3`` / ``/t``)."""
    lines = []
    for para in text.split("\n"):
        for i in range(0, len(para), width):
            part = para[i : i + width]
            lines.append("".join(c + " " if "\u4e00" <= c <= "\u9fff" else c for c in part).strip())
    return lines


def garbage_layer(text: str) -> list[str]:
    """A broken font map's text layer: every CJK character shifted into the Armenian block (U+0531-)."""
    return ["".join(chr(0x531 + ord(c) % 38) if "\u4e00" <= c <= "\u9fff" else c for c in para)
            for para in text.split("\n")]
