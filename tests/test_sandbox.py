"""Every parser runs in a killable child with time and memory limits: a hostile file fails alone, and quickly."""

from __future__ import annotations

import io
import random
import time
import zipfile
from pathlib import Path

import openpyxl
import pytest

from kb.errors import ExtractionError
from kb.ingest.pipeline import ingest
from kb.ingest.readers import ReadContext, read_file
from kb.ingest.readers.zipcheck import zip_bomb_reason
from kb.ingest.sandbox import doc_from_json, doc_to_json
from kb.models import Document, Section
from kb.settings import Settings, get_settings


def ratio_limited_xlsx_bomb(sheet_mb: int = 110) -> bytes:
    """A real workbook whose sheet XML inflates to ``sheet_mb`` MB at ~187x: under the 200x ratio limit,
    like the 1.06 MB file that inflated to 210 MB and held the server's ingest thread for 144 s."""
    wb = openpyxl.Workbook()
    wb.active.append(["井号", "日产气量"])
    small = io.BytesIO()
    wb.save(small)
    rnd = random.Random(0)
    row = b'<row><c t="n"><v>1</v></c></row>'
    block = b"".join(row * 80 + b"<!--%06d-->" % rnd.randrange(10**6) for _ in range(400))  # ~187x compressible
    out = io.BytesIO()
    with zipfile.ZipFile(small) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            if item.filename != "xl/worksheets/sheet1.xml":
                dst.writestr(item, src.read(item))
        with dst.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as f:
            for _ in range((sheet_mb << 20) // len(block) + 1):
                f.write(block)
    return out.getvalue()


@pytest.mark.slow  # parser children killed at their limits
def test_a_ratio_limited_xlsx_bomb_is_refused_quickly_and_the_batch_goes_on(tmp_path: Path, settings: Settings) -> None:
    bomb = ratio_limited_xlsx_bomb()
    with zipfile.ZipFile(io.BytesIO(bomb)) as z:
        sheet = z.getinfo("xl/worksheets/sheet1.xml")
    assert 150 < sheet.file_size / sheet.compress_size < 200 and len(bomb) < 1 << 20  # passes the ratio check
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "bomb.xlsx").write_bytes(bomb)
    (tmp_path / "in" / "ok.txt").write_text("煤层气排采控制井底流压。", encoding="utf-8")
    start = time.monotonic()
    rep = ingest([tmp_path / "in"], settings)
    assert time.monotonic() - start < 30
    assert rep.ingested == 1
    assert [f.error for f in rep.failed] == [
        "bomb.xlsx: refused, looks like a zip bomb: a member expands to 110 MB (limit 100 MB, KB_ZIP_MEMBER_MB)"]


def test_zip_members_are_capped_by_size_as_well_as_ratio() -> None:
    assert zip_bomb_reason([(210 << 20, (210 << 20) // 194)]) == \
        "a member expands to 210 MB (limit 100 MB, KB_ZIP_MEMBER_MB)"
    assert zip_bomb_reason([(90 << 20, 1 << 20)], max_member_mb=100) is None  # 90x and under the cap


@pytest.mark.slow  # a parser child run out of memory
def test_a_parser_past_its_memory_limit_fails_alone_with_a_clear_message() -> None:
    huge = b'{"id": "x", "values": [' + b"1," * 20_000_000 + b"1]}\n"  # 40 MB that json turns into ~400 MB
    with pytest.raises(ExtractionError) as err:
        read_file(Path("huge.jsonl"), huge, ReadContext(parse_memory_mb=256))
    assert err.value.message == "huge.jsonl: parsing needs more than 256 MB of memory (KB_PARSE_MEMORY_MB)"


def test_tables_are_capped_by_rows_and_cells(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "rows.csv"
    f.write_text("井号,产量\n" + "\n".join(f"QS-{i},{i}" for i in range(150)), encoding="utf-8")
    monkeypatch.setenv("KB_TABLE_MAX_ROWS", "100")
    get_settings.cache_clear()
    assert [x.error for x in ingest([f], get_settings()).failed] == [
        "rows.csv: more than 100 rows (KB_TABLE_MAX_ROWS); split the table or raise the limit"]
    monkeypatch.setenv("KB_TABLE_MAX_ROWS", "1000")
    monkeypatch.setenv("KB_TABLE_MAX_CELLS", "200")
    get_settings.cache_clear()
    assert [x.error for x in ingest([f], get_settings()).failed] == [
        "rows.csv: more than 200 cells (KB_TABLE_MAX_CELLS); split the table or raise the limit"]


def test_documents_cross_the_process_boundary_unchanged() -> None:
    doc = Document("d", "paper", "标题", "a.pdf", [Section("正文", ("1 引言",), 3, True, False),
                                                    Section("2019 3", (), None, False, True)], {"year": 2019})
    back = doc_from_json(doc_to_json(doc))
    assert back == doc and back.fingerprint() == doc.fingerprint()
