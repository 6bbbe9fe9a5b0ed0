"""The MCP server (official ``mcp`` SDK): tools search, ask, match, get_document and one resource per document.

Shared by ``kb mcp`` (stdio) and ``kb serve`` (streamable HTTP at /mcp). Every tool runs through a
``SearchRunner``: the API passes its search worker (one thread owns the Searcher and the model), the
stdio command a ``LocalRunner``. Descriptions are Chinese first, then English, for the agents of both.
Every run names what its caller may see (``visible``): over HTTP the key's role, over stdio everything (the
machine's own user, as for the CLI).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol, TypeVar
from urllib.parse import quote

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError, ToolError
from mcp_types import Resource as MCPResource
from pydantic import BaseModel, Field

from kb.errors import BadInputError, KBError, NotFoundError
from kb.index import bm25_files
from kb.index.manifest import Manifest
from kb.models import KINDS, AskResponse, MatchResponse, SearchResponse
from kb.search.ask import TOP_CHUNKS, Asker
from kb.search.hybrid import Searcher
from kb.search.match import Filters, Matcher
from kb.search.match.suggest import suggest_open
from kb.settings import Settings

T = TypeVar("T")
URI = "kb://documents/{doc_id}"
MAX_LISTED = 2000  # resources/list has no paging here; past this many, reach documents through search

INSTRUCTIONS = """沁水县煤层气（CBM）技术知识库：技术检索、带引用的问答、需求与成果匹配、文档全文。
Qinshui County coalbed-methane (CBM) knowledge base: hybrid search, cited answers, need/result matching, full
documents. Ask in Chinese or English; cite doc_id and section when you use a passage."""


class SearchRunner(Protocol):
    async def run(self, fn: Callable[[Searcher], T], timeout: float | None = None, *,
                  visible: frozenset[str]) -> T: ...


class Passage(BaseModel):
    id: str
    section: str
    page: int | None
    text: str


class DocumentView(BaseModel):
    doc_id: str
    kind: str
    title: str
    source: str
    meta: dict[str, Any] = Field(default_factory=dict)
    passages: list[Passage]


def document_view(m: Manifest, doc_id: str, source_name: Callable[[str], str]) -> DocumentView:
    """A published document with its passages in order (NotFoundError otherwise)."""
    row = m.document(doc_id)
    if row is None:
        raise NotFoundError(f"no document with id {doc_id!r}")
    ids = m.chunk_ids(doc_id)
    rows = m.chunk_rows(ids)
    return DocumentView(doc_id=doc_id, kind=row["kind"], title=row["title"], source=source_name(row["source"]),
                        meta=row["meta"], passages=[Passage(id=i, section=rows[i]["section"], page=rows[i]["page"],
                                                            text=rows[i]["text"]) for i in ids if i in rows])


def as_markdown(doc: DocumentView) -> str:
    """A document as an agent reads a resource: title, metadata, then each passage under its heading path."""
    lines = [f"# {doc.title}", "", f"- doc_id: {doc.doc_id}", f"- kind: {doc.kind}", f"- source: {doc.source}"]
    lines += [f"- {k}: {v}" for k, v in doc.meta.items() if v not in (None, "")]
    for p in doc.passages:
        where = p.section + (f" (p.{p.page})" if p.page else "")
        lines += ["", f"## {where}" if where else "##", "", p.text]
    return "\n".join(lines) + "\n"


def _tool_error(exc: KBError) -> ToolError:
    return ToolError(f"{exc.code}: {exc.message}")


class KBServer(MCPServer):
    """MCPServer whose resource list is the index's documents, read when a client asks."""

    def __init__(self, list_documents: Callable[[], Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._list_documents = list_documents

    async def list_resources(self) -> list[MCPResource]:
        return [*await super().list_resources(), *await self._list_documents()]


def build_server(settings: Settings, runner: SearchRunner, *, visible: Callable[[], frozenset[str]],
                 source_name: Callable[[str], str] = lambda s: Path(s).name) -> KBServer:
    """The MCP server over ``runner``'s Searcher; ``visible()`` gives what the current request's caller may see,
    ``source_name`` shows a stored path as users know it."""

    async def documents() -> list[MCPResource]:
        def rows(s: Searcher) -> list[dict[str, Any]]:
            return s.manifest.page_documents(None, "", MAX_LISTED)[1]

        return [MCPResource(uri=URI.format(doc_id=quote(r["doc_id"], safe="")), name=r["doc_id"], title=r["title"],
                            description=f"{r['kind']} · {source_name(r['source'])}", mime_type="text/markdown")
                for r in await runner.run(rows, visible=visible())]

    server = KBServer(documents, name="cbm-kb", title="cbm-kb 煤层气知识库", instructions=INSTRUCTIONS,
                      log_level="WARNING")  # the SDK configures root logging (on stderr) at this level

    async def call(fn: Callable[[Searcher], T], timeout: float | None = None) -> T:
        try:
            return await runner.run(fn, timeout, visible=visible())
        except KBError as exc:
            raise _tool_error(exc) from None

    @server.tool(description="技术检索：在煤层气知识库中混合检索（向量 + BM25），返回段落、标题、章节和页码。"
                             " / Hybrid search (dense + BM25) of the CBM knowledge base: passages with title, section "
                             "(heading path) and page, best first.")
    async def search(
        query: Annotated[str, Field(min_length=1, max_length=2000, description="问题或关键词 / question or keywords")],
        top_k: Annotated[int, Field(ge=1, le=50, description="返回段落数 / passages to return")] = 5,
        kind: Annotated[str | None, Field(description=f"只查此类文档 / only this kind: {', '.join(KINDS)}")] = None,
        section: Annotated[str | None, Field(description="章节路径前缀，如 第四章 / heading-path prefix")] = None,
    ) -> SearchResponse:
        filters = {k: v for k, v in (("kind", kind), ("section", section)) if v}
        return await call(lambda s: s.search(query, top_k=top_k, filters=filters))

    @server.tool(description="智能问答：用知识库原句回答问题，答案中的 [n] 对应 citations[n-1]；找不到时 found=false。"
                             " / Answer a question with sentences from the knowledge base; [n] in the answer cites "
                             "citations[n-1]; found=false when nothing answers it.")
    async def ask(
        question: Annotated[str, Field(min_length=1, max_length=2000, description="问题 / the question")],
        top_k: Annotated[int, Field(ge=1, le=50, description="检索段落数 / passages searched")] = TOP_CHUNKS,
    ) -> AskResponse:
        budget = settings.search_timeout_s + (settings.llm_timeout if settings.llm_base_url else 0.0)
        return await call(lambda s: Asker(s.settings, s).ask(question, top_k=top_k), budget)

    @server.tool(description="供需匹配：给出 need_id、result_id、expert_id 或 text 之一，返回最相符的成果或专家团队"
                             "（或需求）及匹配理由；标为不合适的配对不再推荐。"
                             " / Match a technology need to results or experts and teams (or a result or an expert "
                             "to needs, or free text), with readable reasons. Give exactly one of need_id, result_id, "
                             "expert_id, text; pairs the bureau marked unsuitable are left out.")
    async def match(
        text: Annotated[str | None, Field(max_length=4000, description="问题描述 / a problem in your own words")] = None,
        need_id: Annotated[str | None, Field(max_length=200, description="需求编号，如 N101 / a need's id")] = None,
        result_id: Annotated[str | None, Field(max_length=200, description="成果编号，如 R101 / a result's id")] = None,
        expert_id: Annotated[str | None, Field(max_length=200, description="专家团队编号 / an expert's id")] = None,
        to: Annotated[Literal["result", "expert", "all"],
                      Field(description="需求或文本匹配的对象：成果、专家团队或两者 / results, experts or both")] = "result",
        top_k: Annotated[int, Field(ge=1, le=50)] = 5,
        min_trl: Annotated[int | None, Field(ge=1, le=9, description="最低技术成熟度 / minimum TRL")] = None,
        field: Annotated[str | None, Field(max_length=100, description="领域，如 储运液化 / field")] = None,
        region: Annotated[str | None, Field(max_length=100, description="地区包含，如 沁水 / region contains")] = None,
    ) -> MatchResponse:
        given = [(m, v) for m, v in (("need", need_id), ("result", result_id), ("expert", expert_id), ("text", text))
                 if v is not None]
        if len(given) != 1:
            raise _tool_error(BadInputError("give exactly one of need_id, result_id, expert_id or text"))
        (mode, value), flt = given[0], Filters(min_trl=min_trl, field=field, region=region)
        return await call(lambda s: suggest_open(Matcher(s.settings, s), mode=mode, value=value, to=to, top_k=top_k,
                                                 filters=flt))

    @server.tool(description="文档全文：按 doc_id 取回一篇文档的元数据和全部段落。"
                             " / One document by doc_id: its metadata and every passage in order.")
    async def get_document(
        doc_id: Annotated[str, Field(min_length=1, max_length=1000, description="文档编号 / the document's id")],
    ) -> DocumentView:
        return await call(lambda s: document_view(s.manifest, doc_id, source_name))

    @server.resource(URI, name="document", title="知识库文档 / knowledge-base document", mime_type="text/markdown",
                     description="一篇文档的全文（Markdown） / one document as Markdown")
    async def document(doc_id: str) -> str:
        try:
            return as_markdown(await runner.run(lambda s: document_view(s.manifest, doc_id, source_name),
                                                visible=visible()))
        except NotFoundError as exc:
            raise ResourceNotFoundError(exc.message) from None

    return server


class LocalRunner:
    """``kb mcp``'s runner: one thread owns the Searcher (SQLite connections belong to their thread) and
    reopens it when a writer (``kb sync --watch``, ``kb ingest``) has published a new index."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kb-mcp")
        self._searcher: Searcher | None = None
        self._seen = -2.0

    async def run(self, fn: Callable[[Searcher], T], timeout: float | None = None, *,
                  visible: frozenset[str]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._call, fn, visible)

    def _call(self, fn: Callable[[Searcher], T], visible: frozenset[str]) -> T:
        mark = bm25_files.marker(self.settings.bm25_dir)
        if self._searcher is None or mark != self._seen:
            if self._searcher is not None:
                from chromadb.api.shared_system_client import SharedSystemClient

                self._searcher.close()
                SharedSystemClient.clear_system_cache()  # read the other process's vectors from disk
            self._searcher, self._seen = Searcher(self.settings), mark
        return fn(self._searcher.scoped(visible))

    def close(self) -> None:
        self._pool.submit(lambda: self._searcher.close() if self._searcher else None)
        self._pool.shutdown(wait=True)
