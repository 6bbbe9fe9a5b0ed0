"""Dify's external knowledge API: POST /retrieval, also at /dify/retrieval (Dify's endpoint: http://HOST/dify).

It speaks Dify's shapes, not ours: errors are ``{"error_code", "error_msg"}`` (1001 bad Authorization
header, 1002 authorization failed, 2001 unknown knowledge base; other failures carry their HTTP status
as the code), and Dify's registration probe, a POST with a key and no body, gets ``{"records": []}``.
Keys and the rate limit are the API's own (KB_API_KEYS, KB_PUBLIC_READ, KB_RATE_LIMIT).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, BeforeValidator, Field
from starlette.exceptions import HTTPException

from api.auth import Caller, read_access, verify_key
from api.deps import SearchDep
from api.errors import UnauthorizedError, _validation_message
from kb.errors import KBError
from kb.integrations.dify import MetadataCondition, Record, UnknownKnowledgeError, retrieve
from kb.models import KINDS

BAD_HEADER, AUTH_FAILED, UNKNOWN_KNOWLEDGE = 1001, 1002, 2001


class DifyError(BaseModel):
    """Dify's error shape."""

    error_code: int = Field(description="1001 bad Authorization header, 1002 authorization failed, "
                                        "2001 unknown knowledge_id; otherwise the HTTP status")
    error_msg: str


class DifyAuthError(KBError):
    status = 403

    def __init__(self, error_code: int, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code


def dify_error(status: int, code: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error_code": code, "error_msg": message}, status_code=status, headers=headers)


def _as_dify(exc: Exception) -> JSONResponse:
    if isinstance(exc, DifyAuthError):
        return dify_error(403, exc.error_code, exc.message)
    if isinstance(exc, UnauthorizedError):
        return dify_error(403, AUTH_FAILED, "Authorization failed")
    if isinstance(exc, UnknownKnowledgeError):
        return dify_error(404, UNKNOWN_KNOWLEDGE, f"The knowledge does not exist: {exc.message}")
    if isinstance(exc, RequestValidationError):
        return dify_error(400, 400, _validation_message(exc))
    if isinstance(exc, HTTPException):  # e.g. FastAPI's "error parsing the body" for bytes that are not text
        return dify_error(exc.status_code, exc.status_code, str(exc.detail), getattr(exc, "headers", None))
    assert isinstance(exc, KBError)
    return dify_error(exc.status, exc.status, exc.message, getattr(exc, "headers", None))


class DifyRoute(APIRoute):
    """Every failure of these routes leaves in Dify's error shape (the app's handlers give ours)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def dify_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except (KBError, RequestValidationError, HTTPException) as exc:
                return _as_dify(exc)

        return dify_handler


def dify_access(request: Request) -> Caller:
    """Dify sends ``Authorization: Bearer <key>``; a malformed header is 1001, a wrong key 1002; then the
    API's own read check (the same keys and KB_PUBLIC_READ, and the rate limit)."""
    settings = request.app.state.settings
    header = request.headers.get("authorization")
    keys = settings.api_key_list
    if header is not None:
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise DifyAuthError(BAD_HEADER, "Invalid Authorization header format. Expected 'Bearer <api-key>' format.")
        if keys and not verify_key(request, token.strip(), keys):  # wrong keys count toward the back-off
            raise DifyAuthError(AUTH_FAILED, "Authorization failed")
    elif keys and not settings.public_read and "x-api-key" not in request.headers:
        raise DifyAuthError(BAD_HEADER, "Invalid Authorization header format. Expected 'Bearer <api-key>' format.")
    return read_access(request)


# a dependency, so the key is checked before the body (a wrong key is 1002 whatever the body)
DifyAccess = Annotated[Caller, Depends(dify_access)]


def _no_bool(v: object) -> object:
    if isinstance(v, bool):  # pydantic would take true as 1
        raise ValueError("a number, not true/false")
    return v


class RetrievalSetting(BaseModel):
    top_k: Annotated[int, BeforeValidator(_no_bool)] = Field(5, ge=1, le=100, description="records wanted")
    score_threshold: Annotated[float | None, BeforeValidator(_no_bool)] = Field(
        0.0, ge=0.0, le=1.0, description="least score kept (0 or null when disabled)")


class RetrievalRequest(BaseModel):
    knowledge_id: str = Field(..., max_length=200, description=f"all, or one kind: {', '.join(KINDS)}")
    query: str = Field(..., max_length=2000, description="the user's question")
    retrieval_setting: RetrievalSetting = Field(default_factory=lambda: RetrievalSetting(top_k=5, score_threshold=0.0))
    metadata_condition: MetadataCondition | None = None

    model_config = {"json_schema_extra": {"examples": [
        {"knowledge_id": "all", "query": "排采过程中如何控制井底流压",
         "retrieval_setting": {"top_k": 3, "score_threshold": 0.5}},
        {"knowledge_id": "result", "query": "管道泄漏监测", "retrieval_setting": {"top_k": 5, "score_threshold": 0.0},
         "metadata_condition": {"logical_operator": "and", "conditions": [
             {"name": ["trl"], "comparison_operator": "≥", "value": "6"},
             {"name": "field", "comparison_operator": "is", "value": "储运液化"}]}}]}}


class RetrievalResponse(BaseModel):
    records: list[Record]


router = APIRouter(tags=["dify"], route_class=DifyRoute)
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": DifyError, "description": "bad body or query"},
    403: {"model": DifyError, "description": "1001 bad Authorization header, 1002 authorization failed"},
    404: {"model": DifyError, "description": "2001 unknown knowledge_id"},
    409: {"model": DifyError, "description": "index busy or built with another model"},
    429: {"model": DifyError, "description": "rate limit (KB_RATE_LIMIT) reached; see Retry-After"},
    504: {"model": DifyError, "description": "the search took longer than its time budget"}}


async def retrieval(caller: DifyAccess, worker: SearchDep, body: RetrievalRequest | None = None) -> RetrievalResponse:
    """Dify's external knowledge retrieval; a POST with no body (Dify's registration check) gets no records."""
    if body is None:
        return RetrievalResponse(records=[])
    b, rs = body, body.retrieval_setting
    records = await worker.run(lambda s: retrieve(s, knowledge_id=b.knowledge_id, query=b.query, top_k=rs.top_k,
                                                  threshold=rs.score_threshold or 0.0, condition=b.metadata_condition),
                                 visible=caller.visible)
    return RetrievalResponse(records=records)


for _path in ("/retrieval", "/dify/retrieval"):
    router.add_api_route(_path, retrieval, methods=["POST"], response_model=RetrievalResponse, responses=_ERRORS,
                         summary="Dify 外部知识库检索 / Dify external knowledge retrieval",
                         operation_id=f"dify_retrieval{_path.replace('/', '_')}")
