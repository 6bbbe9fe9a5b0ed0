"""Text repair, personal-data masking, table headers, clause structure: the pure functions, on real-looking snippets."""

from __future__ import annotations

from kb.ingest.chunk import values_only
from kb.ingest.ocr import Box, reading_order
from kb.ingest.plan import clause_split, guess_title, parse_structure, standard_code
from kb.ingest.readers.grid import header_rows, is_lookup_row, merge_header, named_rows, unique_names
from kb.ingest.readers.legacy import strip_field_codes
from kb.ingest.readers.office import docx_title
from kb.ingest.readers.web import page_title, table_line
from kb.lang.pii import EMAIL, ID_CARD, PHONE, id_check_ok, mask_pii
from kb.lang.repair import (
    drop_debris,
    drop_running_lines,
    fold_compat,
    garbage_share,
    line_join,
    needs_ocr,
)
from kb.lang.text import normalize

# ---- text layers -----------------------------------------------------------------------------------------------


def test_spaced_ocr_layer_loses_its_spaces_between_cjk_characters() -> None:
    assert normalize("煤 层 气 含 量 为 12.6 m3/t ， 渗 透 率 0.85 mD") == "煤层气含量为12.6 m3/t，渗透率0.85 mD"


def test_units_numbers_and_hyphenated_words_broken_over_lines_are_rejoined() -> None:
    joined = "含气量为12.6m"
    for piece in ("3", "/t"):
        joined = line_join(joined, piece)
    assert joined == "含气量为12.6m3/t"
    assert line_join("孔隙度为4.", "2%，渗透率") == "孔隙度为4.2%，渗透率"
    assert line_join("coal permea-", "bility is low") == "coal permeability is low"
    assert line_join("Dewatering lowers the", "reservoir pressure") == "Dewatering lowers the reservoir pressure"
    assert line_join("排采过程中应控制", "井底流压") == "排采过程中应控制井底流压"
    assert line_join("in 2010", "25 wells were drilled") == "in 2010 25 wells were drilled"  # not a unit


def test_ligatures_radicals_and_full_width_letters_are_folded_but_chinese_punctuation_stays() -> None:
    assert fold_compat("ﬁeld ﬂow") == "field flow"
    assert fold_compat("⾦属矿⼭") == "金属矿山"  # Kangxi radicals a PDF font map emits for 金, 山
    assert fold_compat("ＧＢ５０４７１，煤层气：") == "GB50471，煤层气："


def test_running_headers_footers_and_page_numbers_repeated_across_pages_are_dropped() -> None:
    pages = [["北京大学硕士学位论文", f"第{n}章 正文", f"煤层气井排采的内容，共{n}口井。", f"— {n} —"] for n in range(1, 6)]
    kept = drop_running_lines(pages)
    assert all("北京大学硕士学位论文" not in p and not any("—" in x for x in p) for p in kept[1:])
    assert kept[0] == ["北京大学硕士学位论文", "第1章 正文", "煤层气井排采的内容，共1口井。", "— 1 —"]  # first stays
    assert kept[2] == ["第3章 正文", "煤层气井排采的内容，共3口井。"]  # chapters differ: kept
    assert drop_running_lines(pages[:2]) == pages[:2]  # two pages prove nothing


def test_columns_of_bare_numbers_are_dropped_but_a_labelled_row_and_a_formula_stay() -> None:
    lines = ["表2 各井产量", "0.12 0.34 0.56", "1.2 3.4 5.6", "7 8 9 10", "QS-101 日产气 1520", "Q = 0.5 × P"]
    assert drop_debris(lines) == ["表2 各井产量", "QS-101 日产气 1520", "Q = 0.5 × P"]


def test_garbage_text_layers_are_told_from_real_ones() -> None:
    assert garbage_share("ՓՅԵՀՏԴՉԷԵԸ ՀՃՕԲՕՈՀ") == 1.0  # CJK glyphs mapped into the Armenian block
    assert garbage_share("煤层气 coalbed methane 12.6 m³/t，α=0.5") == 0.0
    assert needs_ocr("ՓՅԵՀՏԴՉԷԵԸ" * 20, 0.05, 595, 842) == "garbage text layer"
    assert needs_ocr("", 0.05, 595, 842) == "no text layer"
    assert needs_ocr("第 3 页", 0.08, 595, 842) == "text layer far shorter than the page's ink"
    assert needs_ocr("煤层气排采。" * 200, 0.08, 595, 842) is None
    assert needs_ocr("", 0.0, 595, 842) is None  # a blank page


def test_two_column_ocr_boxes_are_read_column_by_column() -> None:
    boxes = [Box(100, 50, 1500, 90, "标题：沁水盆地煤层气"),
             *[Box(100, 120 + 40 * i, 780, 150 + 40 * i, f"左{i}") for i in range(4)],
             *[Box(860, 120 + 40 * i, 1500, 150 + 40 * i, f"右{i}") for i in range(4)]]
    assert reading_order(boxes, 1600) == ["标题：沁水盆地煤层气", "左0", "左1", "左2", "左3", "右0", "右1", "右2", "右3"]
    one_column = [Box(100, 50 + 40 * i, 1500, 80 + 40 * i, f"行{i}") for i in range(3)]
    assert reading_order(one_column, 1600) == ["行0", "行1", "行2"]


# ---- personal data --------------------------------------------------------------------------------------------


def test_phones_emails_and_id_numbers_are_masked_and_record_ids_are_not() -> None:
    advert = ("本资料由某某文库上传，联系电话：13912345678，座机 (0356)2345678，或 0356-2345678-12，"
              "邮箱 upload_user@example.com。身份证号 110101199003074514。")
    masked = mask_pii(advert)
    assert masked == (f"本资料由某某文库上传，联系电话：{PHONE}，座机 {PHONE}，或 {PHONE}，"
                      f"邮箱 {EMAIL}。身份证号 {ID_CARD}。")
    assert id_check_ok("110101199003074514") and not id_check_ok("110101199003074515")
    kept = "井号 QS-101，记录号 110101199003074515，产量 13912.345678 万方，标准 GB 50471-2008"
    assert mask_pii(kept) == kept  # a wrong check digit, a decimal and a standard number are not personal data


# ---- tables --------------------------------------------------------------------------------------------------


def test_a_headerless_numeric_table_gets_generated_names_never_its_first_record() -> None:
    grid = [["2019-03-01", "3", "12.5", "1102"], ["2019-03-05", "0", "8.1", "1307"], ["2019-04-11", "1", "9.9", "2210"]]
    assert header_rows(grid) == 0
    names, rows = named_rows(grid)
    assert names == ["列1", "列2", "列3", "列4"] and rows[0] == (1, grid[0])


def test_one_and_two_row_headers_are_found_and_merged() -> None:
    one = [["井号", "日产气量", "日产水量"], ["QS-101", "1520", "3.2"], ["QS-102", "2210", "1.8"], ["QS-103", "860", "6.5"]]
    assert header_rows(one) == 1
    two = [["W01", "Q01", "Q02"], *one]
    assert header_rows(two) == 2
    assert named_rows(two)[0] == ["井号 W01", "日产气量 Q01", "日产水量 Q02"]
    assert merge_header(["产量", "", "压力"], ["气", "水", "套压"]) == ["产量 气", "产量 水", "压力 套压"]
    records = [["id", "title", "description", "trl"], ["N1", "排采", "控制井底流压", "5"]]
    assert header_rows(records) == 1  # record files name their fields


def test_repeated_and_empty_column_names_are_made_unique() -> None:
    assert unique_names(["名称", "备注", "名称", "", "名称"]) == ["名称", "备注", "名称_2", "列4", "名称_3"]


def test_rows_of_numbers_are_lookup_rows_and_embed_only_their_values() -> None:
    assert is_lookup_row(["2019-03-01", "3", "12.5", "1102", "山西"])
    assert not is_lookup_row(["CBM-01", "沁水盆地高煤阶煤层气高效开发示范工程"])
    assert values_only("日期：2019-03-01；死亡人数：3；地点编码：1102") == "2019-03-01 3 1102"


# ---- structure and titles --------------------------------------------------------------------------------------


def test_standard_clauses_and_appendices_become_heading_paths() -> None:
    text = ("GB 50471-2008\n煤矿瓦斯抽采工程设计规范\n\n1 总则\n1.0.1 为在煤矿瓦斯抽采工程设计中贯彻国家法律，制定本规范。\n"
            "4 抽采系统\n4.2 抽采管路\n4.2.3 抽采管路的管径应按最大抽采流量计算，管内流速宜为5～12m/s。\n"
            "附录 A （规范性附录） 抽采量计算\nA.0.1 抽采纯量按下式计算。")
    paths = {s.path: s.text for s in parse_structure(text)}
    assert paths[("4 抽采系统", "4.2 抽采管路", "4.2.3")] == "抽采管路的管径应按最大抽采流量计算，管内流速宜为5～12m/s。"
    assert paths[("附录A （规范性附录）抽采量计算", "A.0.1")] == "抽采纯量按下式计算。"
    assert standard_code(text) == "GB 50471-2008" and guess_title(text) == "煤矿瓦斯抽采工程设计规范"


def test_law_articles_nest_under_chapters_and_sections() -> None:
    law = ("# 煤层气勘探开发管理条例（示例）\n## 第一章 总则\n第一条 为了规范煤层气勘探开发活动，制定本条例。\n"
           "## 第三章 开采\n### 第二节 安全\n第三十条 煤层气开采企业应当建立安全生产责任制，定期开展隐患排查治理。")
    paths = {s.path[1:]: s.text for s in parse_structure(law)}
    assert paths[("第三章开采", "第二节安全", "第三十条")] == "煤层气开采企业应当建立安全生产责任制，定期开展隐患排查治理。"
    assert clause_split("第30条 企业应当报告。", False) == (35, "第30条", "企业应当报告。")
    assert clause_split("12.6 万立方米的产量来自三口井。", True) is None  # a number, not a clause (万)


def test_english_headings_keep_their_spaces() -> None:
    [section] = parse_structure("## Reservoir pressure control\nKeep the bottom-hole pressure falling slowly.")
    assert section.path == ("Reservoir pressure control",)


def test_titles_come_from_title_style_core_properties_or_the_page() -> None:
    assert docx_title("煤层气排采技术导则", "", "# 一、背景") == "煤层气排采技术导则"
    assert docx_title("", "沁水县煤层气发展报告", "# 一、背景") == "沁水县煤层气发展报告"
    assert docx_title("", "Microsoft Word - 报告.doc", "煤层气发展报告\n一、背景") == "煤层气发展报告"
    assert page_title("关于做好冬季安全生产工作的通知_通知公告_沁水县人民政府") == "关于做好冬季安全生产工作的通知"
    assert table_line("| 井口伴热带 | 每日一次 | 采气作业区 |") == "井口伴热带；每日一次；采气作业区"


def test_word_field_codes_are_stripped_from_catdoc_text() -> None:
    assert strip_field_codes('见 HYPERLINK "http://x.cn/a" 附件一，PAGEREF _Toc123 \\h 12') == "见  附件一， 12"
