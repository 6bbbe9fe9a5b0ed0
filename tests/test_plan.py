"""The county plan's structure: heading paths, furniture removed."""

from kb.ingest.chunk import chunk_document
from kb.ingest.plan import heading_level, parse_structure
from kb.models import Document
from tests.utils import SEED

CBM = "第四章强化科技创新驱动，开启高质量转型发展新征程 > 二、突破重点产业关键技术 > （一）煤层气产业"


def _sections():  # type: ignore[no-untyped-def]
    return parse_structure(SEED.read_text(encoding="utf-8"))


def test_heading_levels() -> None:
    assert heading_level("第四章 强化科技创新驱动") == 20
    assert heading_level("二、突破重点产业关键技术") == 30
    assert heading_level("(二) 实施创新支撑体系提升工程") == 40
    assert heading_level("1. 搭建产业创新平台") == 50
    assert heading_level("专栏 1 农业科技培训工程") == 90
    assert heading_level("一、科技研发项目：沁水盆地高煤阶煤层气高效开发示范工程；煤层气高效增产及排采关键技术研究。") is None


def test_plan_sections_carry_heading_paths() -> None:
    paths = {" > ".join(s.path) for s in _sections()}
    assert CBM in paths
    assert f"{CBM} > 专栏2沁水县“十四五”煤层气产业项目" in paths
    assert ("第四章强化科技创新驱动，开启高质量转型发展新征程 > 一、实施科技创新重大工程 > "
            "（二）实施创新支撑体系提升工程 > 2.建设科技产业园") in paths
    cbm = next(s for s in _sections() if " > ".join(s.path) == CBM)
    assert "煤层气利用率达到95%以上" in cbm.text


def test_table_of_contents_and_copy_to_block_are_dropped() -> None:
    text = "\n".join(s.text for s in _sections())
    assert "·····" not in text and "抄送" not in text and "县属各事业单位" not in text
    assert text.count("发展成就") <= 1  # only the real heading, never the TOC line


def test_broken_paragraphs_are_rejoined() -> None:
    first = next(s for s in _sections() if s.path and s.path[-1] == "（一）教育事业迈上新台阶")
    assert "职业教育创新升级的国民教育体系" in first.text


def test_plan_chunks_embed_their_heading_path() -> None:
    doc = Document("plan", "plan", "规划", "plan.txt", _sections())
    chunks = chunk_document(doc, size=300, overlap=60)
    cbm = [c for c in chunks if c.section == CBM]
    assert cbm and all(c.embed_text.startswith(CBM + "\n") for c in cbm)
    assert all(len(c.text) <= 300 for c in chunks)
