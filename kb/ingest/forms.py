"""Records entered by form (``POST /records``, ``PUT /records/{id}``, the web page): a field schema per kind,
validation with one Chinese message per field, and the write that keeps the record's earlier version.

The page draws its form from ``FORMS`` (``GET /record-form``), so a new kind of record (experts) is one entry
here. A validated form becomes the same Document a JSONL line would (``record_document``), so a record typed in
and a record read from a file match, search and export alike.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from kb.errors import BadInputError, KBError, NotFoundError, RecordError
from kb.index import versions
from kb.index.lock import write_lock
from kb.index.manifest import Manifest
from kb.ingest.pipeline import ingest_documents
from kb.ingest.readers.tables import record_document, set_visibility
from kb.models import Document, content_hash
from kb.settings import Settings

FORM_SOURCE = "表单录入"  # the source of a record created by form (a file's record keeps its file when edited)
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_WORD = re.compile(r"[^\W_]")  # a title or description needs a letter, digit or CJK character
_PREFIX = {"need": "N", "result": "R", "expert": "E"}


@dataclass(frozen=True)
class FormField:
    """One input of a record form: ``widget`` is text, textarea, trl (1-9), field (the configured list),
    keywords (comma-separated) or visibility (公开 / 内部)."""

    name: str
    label: str
    widget: str = "text"
    required: bool = False
    max_len: int = 200
    hint: str = ""


def _fields(what: str, org: str, trl: str) -> tuple[FormField, ...]:
    return (
        FormField("id", "编号", hint="留空则自动生成；只能用字母、数字和 - _ ."),
        FormField("title", f"{what}名称", required=True),
        FormField("description", f"{what}描述", "textarea", required=True, max_len=20000),
        FormField("field", "领域", "field", required=True),
        FormField("org", org),
        FormField("region", "地区", hint="如 山西沁水县"),
        FormField("trl", trl, "trl", hint="1–9"),
        FormField("keywords", "关键词", "keywords", max_len=1000, hint="用逗号或顿号分隔"),
        FormField("visibility", "可见范围", "visibility", hint="内部：只有科技局和管理员能看到"),
    )


FORMS: dict[str, tuple[FormField, ...]] = {
    "need": _fields("需求", "需求单位", "期望技术成熟度（TRL）"),
    "result": _fields("成果", "成果单位", "技术成熟度（TRL）"),
    "expert": (
        FormField("id", "编号", hint="留空则自动生成；只能用字母、数字和 - _ ."),
        FormField("title", "专家或团队名称", required=True),
        FormField("description", "研究方向与专长", "textarea", required=True, max_len=20000),
        FormField("field", "领域", "field", required=True),
        FormField("org", "所在单位"),
        FormField("region", "地区", hint="如 山西晋城市"),
        FormField("keywords", "关键词", "keywords", max_len=1000, hint="用逗号或顿号分隔"),
        FormField("contact", "联系方式", max_len=500, hint="只有科技局和管理员能看到，不进入检索"),
        FormField("visibility", "可见范围", "visibility", hint="内部：只有科技局和管理员能看到"),
    ),
}


class RecordFormError(KBError):
    """A form with wrong fields: ``fields`` maps each wrong field to what is wrong with it, in Chinese."""

    code = "invalid_record"
    status = 422

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__("记录有误：" + "；".join(f"{k}：{v}" for k, v in fields.items()))
        self.fields = fields


class RecordExistsError(KBError):
    code = "record_exists"
    status = 409


def schema(kind: str, field_choices: list[str]) -> list[dict[str, Any]]:
    """The form of a kind as the page draws it: each field with its label, widget, rule and choices."""
    out = []
    for f in FORMS[_known(kind)]:
        choices = field_choices if f.widget == "field" else ["公开", "内部"] if f.widget == "visibility" else []
        out.append({**asdict(f), "choices": choices})
    return out


VISIBILITY_CHOICES = ["公开", "内部", "public", "internal"]
MAX_KEYWORDS, MAX_KEYWORD = 20, 40


def json_schema(field_choices: list[str], *, edit: bool = False) -> dict[str, Any]:
    """The JSON Schema of a form's body (both kinds): exactly what ``validate`` accepts, for generated clients.
    An edit (``edit``) takes its kind from the record. Empty strings are blank fields, as the page sends them."""
    text = {"type": "string"}
    widgets: dict[str, dict[str, Any]] = {
        "trl": {"anyOf": [{"type": "integer", "minimum": 1, "maximum": 9}, {**text, "pattern": "^[1-9]?$"},
                          {"type": "null"}]},
        "field": {**text, "enum": field_choices},
        "visibility": {"anyOf": [{**text, "enum": ["", *VISIBILITY_CHOICES]}, {"type": "null"}]},
        "keywords": {"anyOf": [{**text, "maxLength": 1000}, {"type": "array", "maxItems": MAX_KEYWORDS,
                                                              "items": {**text, "maxLength": MAX_KEYWORD}},
                               {"type": "null"}]},
    }

    def one(kind: str) -> dict[str, Any]:
        props: dict[str, Any] = {"kind": {**text, "enum": [kind]}}
        for f in FORMS[kind]:
            if f.name == "id":
                props["id"] = {"anyOf": [{**text, "pattern": f"^(?:{_ID.pattern[1:-1]})?$"}, {"type": "null"}]}
            elif f.required and f.widget != "field":
                props[f.name] = {**text, "maxLength": f.max_len, "pattern": _WORD.pattern}
            else:
                props[f.name] = widgets.get(f.widget, {"anyOf": [{**text, "maxLength": f.max_len}, {"type": "null"}]})
        required = [f.name for f in FORMS[kind] if f.required]
        return {"type": "object", "properties": props, "required": required if edit else ["kind", *required],
                "additionalProperties": False}

    # a new record: exactly the form of its kind; an edit: the form of the record's kind (which the body may omit)
    return {"type": "object", ("anyOf" if edit else "oneOf"): [one(k) for k in FORMS]}


def _known(kind: str) -> str:
    if kind not in FORMS:
        raise RecordFormError({"kind": f"类型须为 {' 或 '.join(FORMS)}"})
    return kind


def _keywords(raw: Any) -> tuple[str, str | None]:
    if isinstance(raw, list):
        if len(raw) > MAX_KEYWORDS or not all(isinstance(k, str) and len(k) <= MAX_KEYWORD for k in raw):
            return "", f"关键词至多 {MAX_KEYWORDS} 个，每个至多 {MAX_KEYWORD} 个字"
        return "，".join(k.strip() for k in raw if k.strip()), None
    return (raw.strip(), None) if isinstance(raw, str) and len(raw) <= 1000 else ("", "关键词至多 1000 个字")


def _trl(raw: Any) -> tuple[str, str | None]:
    if isinstance(raw, float) and raw.is_integer():  # JSON 6.0 is the integer 6
        raw = int(raw)
    if isinstance(raw, int) and not isinstance(raw, bool) and 1 <= raw <= 9:
        return str(raw), None
    if isinstance(raw, str) and re.fullmatch(r"[1-9]?", raw):
        return raw, None
    return "", "技术成熟度须为 1 到 9 的整数"


def _check(f: FormField, raw: Any, field_choices: list[str]) -> tuple[str, str | None]:
    """(the field's text, what is wrong with it in Chinese or None): the rules ``json_schema`` states."""
    if f.widget in ("trl", "keywords") and raw is not None:
        return _trl(raw) if f.widget == "trl" else _keywords(raw)
    if raw is not None and not isinstance(raw, str):
        return "", f"{f.label}须为文字"
    text = (raw or "").strip()
    if f.required and not _WORD.search(text):
        return "", f"请选择{f.label}" if f.widget == "field" else f"请填写{f.label}"
    if len(raw or "") > f.max_len:
        return "", f"{f.label}不能超过 {f.max_len} 个字"
    if f.widget == "field" and raw not in field_choices:
        return "", f"领域须从列表中选择：{'、'.join(field_choices)}"
    if f.widget == "visibility" and raw and raw not in VISIBILITY_CHOICES:
        return "", "可见范围须为“公开”或“内部”"
    if f.name == "id" and raw and not _ID.match(raw):
        return "", "编号只能用字母、数字和 - _ .，以字母或数字开头，至多 64 个字符"
    return text, None


def validate(kind: str, data: dict[str, Any], field_choices: list[str], *, doc_id: str | None = None,
             kept: dict[str, Any] | None = None) -> Document:
    """The Document of a filled-in form, or RecordFormError naming every wrong field. ``doc_id`` (an edit) wins
    over an ``id`` in the form; a new record without one gets ``N``/``R`` and a hash of its title and text.
    ``kept``: an edited record's columns the form does not show (a file's source_url, year ...), kept as they are
    unless the form sends them too."""
    spec = FORMS[_known(kind)]
    names = {f.name for f in spec}
    kept = {k: v for k, v in (kept or {}).items() if k not in names}
    errors = {k: "没有这个字段" for k in data if k not in names and k not in kept and k != "kind"}
    checked = {f.name: _check(f, data.get(f.name), field_choices) for f in spec}
    if doc_id is not None:  # an edit keeps its id, whatever the form says (a file's id need not fit _ID)
        checked["id"] = (doc_id, None)
    values = {name: text for name, (text, _) in checked.items()}
    errors |= {name: problem for name, (_, problem) in checked.items() if problem}
    if errors:
        raise RecordFormError(errors)
    if not values["id"]:
        values["id"] = _PREFIX[kind] + "-" + content_hash(kind, values["title"], values["description"])[:10]
    row = {**kept, **{k: data[k] for k in kept if k in data}, **{k: v for k, v in values.items() if v}}
    label = f"{FORM_SOURCE} {values['id']}"
    try:
        return set_visibility(record_document(row, kind, FORM_SOURCE, label), label)
    except RecordError as exc:  # the checks above should leave none; say so plainly if one slips through
        raise RecordFormError({"form": exc.message}) from None


@dataclass(frozen=True)
class Saved:
    doc_id: str
    kind: str
    changed: bool = True
    version: int | None = None  # the number the replaced version was kept under (an edit that changed it)


def save(doc: Document, settings: Settings, *, by: str, create: bool) -> Saved:
    """Write a record from a form under the writer lock: ``create`` refuses an id in use, an edit needs one.
    An edit that changes the record keeps what it replaced as a version, named by ``by`` (the key's name)."""
    with write_lock(settings.home):
        m = Manifest(settings.manifest_path)
        try:
            before = m.document(doc.doc_id)
            texts = [c["text"] for c in m.document_chunks(doc.doc_id)] if before else []
        finally:
            m.close()
        if create and before is not None:
            raise RecordExistsError(f"编号 {doc.doc_id} 已被占用，请换一个编号，或修改这条记录")
        if not create and before is None:
            raise NotFoundError(f"没有编号为 {doc.doc_id!r} 的记录")
        if before is not None and before["kind"] != doc.kind:
            raise BadInputError(f"{doc.doc_id} 是 {before['kind']}，不能改成 {doc.kind}")
        source = str(before["source"]) if before else FORM_SOURCE
        report = ingest_documents([doc], settings, source)
        if report.failed:
            raise KBError(report.failed[0].error)
        if before is None or not report.ingested:
            return Saved(doc.doc_id, doc.kind, changed=bool(report.ingested))
        m = Manifest(settings.manifest_path)
        try:
            return Saved(doc.doc_id, doc.kind, version=versions.keep(m, before, texts, by))
        finally:
            m.close()
