"""Needs and results entered and edited by form: the form's fields, create, edit, show, earlier versions."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from api.auth import ReadAccess, WriteAccess
from api.deps import SearchDep, SettingsDep
from api.errors import COMMON_ERRORS, error_responses
from api.jobs import write_lock
from kb.errors import NotFoundError
from kb.index import bm25_files, versions
from kb.ingest import forms
from kb.models import visibility_of
from kb.search.hybrid import Searcher
from kb.search.match.records import description_of, join_chunks, load_record
from kb.settings import Settings

router = APIRouter(prefix="/records", tags=["records"], responses=COMMON_ERRORS)
# not /records/form: PUT /records/{id} would take that path too (and 405 would advertise PUT on it)
form_router = APIRouter(tags=["records"], responses=COMMON_ERRORS)
# the schema states the form's rules (with the default KB_RECORD_FIELDS); the body still arrives as a dict, so each
# wrong field gets its own Chinese message (422 invalid_record) rather than a schema error
_DEFAULT_FIELDS = str(Settings.model_fields["record_fields"].default).split(",")
_EXAMPLE = {"kind": "need", "title": "井下抽采钻孔封孔漏气",
            "description": "抽采钻孔封孔后漏气严重，浓度低，需要新的封孔材料和工艺。", "field": "瓦斯抽采",
            "org": "某煤矿（沁水）", "region": "山西沁水县", "trl": 6, "keywords": "封孔，抽采钻孔",
            "visibility": "内部"}
FormBody = Annotated[dict[str, Any], Body(json_schema_extra=forms.json_schema(_DEFAULT_FIELDS), examples=[_EXAMPLE])]
EditBody = Annotated[dict[str, Any], Body(json_schema_extra=forms.json_schema(_DEFAULT_FIELDS, edit=True),
                                          examples=[{k: v for k, v in _EXAMPLE.items() if k != "kind"}])]


class FormField(BaseModel):
    name: str
    label: str
    widget: str = Field(description="text, textarea, trl (1-9), field (one of choices), keywords, visibility")
    required: bool
    max_len: int
    hint: str
    choices: list[str]


class RecordForm(BaseModel):
    kind: str
    fields: list[FormField]


class RecordView(BaseModel):
    doc_id: str
    kind: str
    title: str
    description: str
    meta: dict[str, Any] = Field(description="field, org, region, trl, keywords and any other column")
    visibility: str = Field(description="public or internal")
    contact: str | None = Field(None, description="contact details: only to a bureau or admin key (never in search, "
                                                  "ask or match)")


class Saved(BaseModel):
    doc_id: str
    kind: str
    changed: bool = Field(description="false when the form changed nothing")
    version: int | None = Field(None, description="an edit: the number the replaced version is kept under")


class Version(RecordView):
    version: int
    replaced_at: float
    replaced_by: str = Field(description="name of the API key that replaced this version")


def _view(doc_id: str, kind: str, title: str, body: str, meta: dict[str, Any]) -> RecordView:
    description = description_of(body, str(meta.get("keywords") or ""))
    return RecordView(doc_id=doc_id, kind=kind, title=title, description=description, meta=meta,
                      visibility=visibility_of(meta), contact=None)


@form_router.get("/record-form", response_model=RecordForm, summary="记录表单的字段（需求、成果）")
async def form(settings: SettingsDep, _: ReadAccess,
               kind: Annotated[str, Query(max_length=20, json_schema_extra={"enum": list(forms.FORMS)})] = "need",
               ) -> RecordForm:
    """The fields of the form for a kind, with labels, rules and choices (the page draws the form from these)."""
    return RecordForm(kind=kind, fields=[FormField(**f) for f in forms.schema(kind, settings.record_field_list)])


async def _write(worker: SearchDep, settings: Settings, save: Any) -> Saved:
    def run() -> forms.Saved:
        with write_lock(settings, wait_s=10):
            before = bm25_files.marker(settings.bm25_dir)
            try:
                return save()  # type: ignore[no-any-return]
            finally:
                worker.refresh((before, bm25_files.marker(settings.bm25_dir)))

    done = await run_in_threadpool(run)
    return Saved(doc_id=done.doc_id, kind=done.kind, changed=done.changed, version=done.version)


@router.post("", status_code=201, response_model=Saved, summary="新建需求、成果或专家（表单）",
             responses=error_responses(400, 403, 409, 422))
async def create(body: FormBody, worker: SearchDep, settings: SettingsDep, caller: WriteAccess) -> Saved:
    """A new record from the form's fields (``kind`` need or result); 422 names each wrong field in Chinese."""
    doc = forms.validate(str(body.get("kind") or ""), body, settings.record_field_list)
    return await _write(worker, settings, lambda: forms.save(doc, settings, by=caller.name, create=True))


@router.put("/{doc_id}", response_model=Saved, summary="修改需求、成果或专家（保留旧版本）",
            responses=error_responses(400, 403, 404, 409, 422))
async def edit(doc_id: str, body: EditBody, worker: SearchDep, settings: SettingsDep, caller: WriteAccess) -> Saved:
    """Replace the record's fields (all of them: a field left out is emptied, except ``visibility``, which stays
    as it was, so an edit never publishes an internal record by omission; columns the form does not show stay
    too); what it replaces is kept as a version (``GET /records/{id}/versions``)."""
    current = await worker.run(lambda s: load_record(s.manifest, doc_id), visible=caller.visible)
    if current is None:
        raise NotFoundError(f"没有编号为 {doc_id!r} 的需求、成果或专家")
    contact = await worker.run(lambda s: s.manifest.contact(doc_id), visible=caller.visible)
    body = {"visibility": visibility_of(current.meta), **({"contact": contact} if contact else {}), **body}
    doc = forms.validate(current.kind, body, settings.record_field_list, doc_id=doc_id, kept=current.meta)
    return await _write(worker, settings, lambda: forms.save(doc, settings, by=caller.name, create=False))


def _shown(s: Searcher, doc_id: str, *, contact: bool = False) -> RecordView:
    rec = load_record(s.manifest, doc_id)
    if rec is None:
        raise NotFoundError(f"没有编号为 {doc_id!r} 的需求、成果或专家")
    view = _view(rec.doc_id, rec.kind, rec.title, rec.body, rec.meta)
    view.contact = s.manifest.contact(doc_id) if contact else None
    return view


@router.get("/{doc_id}", response_model=RecordView, summary="一条需求、成果或专家（表单的字段）", responses=error_responses(404))
async def show(doc_id: str, worker: SearchDep, caller: ReadAccess) -> RecordView:
    """The record's fields as the form shows them (404 for one this key may not see); ``contact`` only for a bureau
    or admin key."""
    return await worker.run(lambda s: _shown(s, doc_id, contact=caller.allowed("bureau")), visible=caller.visible)


def _versions(s: Searcher, doc_id: str) -> list[Version]:
    _shown(s, doc_id)  # 404 unless this caller may read the record now
    return [Version(**_view(doc_id, v["kind"], v["title"], join_chunks(v["texts"]), v["meta"]).model_dump(),
                    version=v["version"], replaced_at=v["replaced_at"], replaced_by=v["replaced_by"])
            for v in versions.earlier(s.manifest, doc_id)]


@router.get("/{doc_id}/versions", response_model=list[Version], summary="需求、成果或专家的历史版本",
            responses=error_responses(404))
async def earlier(doc_id: str, worker: SearchDep, caller: ReadAccess) -> list[Version]:
    """Every version an edit replaced, newest first, with when and by which key."""
    return await worker.run(lambda s: _versions(s, doc_id), visible=caller.visible)
