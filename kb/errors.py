"""One error hierarchy: every error has a stable ``code`` and an HTTP status."""

from __future__ import annotations


class KBError(Exception):
    """Base of all cbm-kb errors; the CLI prints ``message``, the API returns it as JSON."""

    code = "kb_error"
    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, dict[str, str]]:
        return {"error": {"code": self.code, "message": self.message}}


class BadInputError(KBError):
    code = "bad_input"
    status = 400


class BadQueryError(BadInputError):
    code = "bad_query"


class BadFilterError(BadInputError):
    code = "bad_filter"


class UnsupportedFileError(KBError):
    code = "unsupported_file"
    status = 415


class ExtractionError(KBError):
    """A file could be opened but yielded no usable text (empty, encrypted, image-only...)."""

    code = "extraction_failed"
    status = 422


class RecordError(BadInputError):
    code = "bad_record"


class NotFoundError(KBError):
    code = "not_found"
    status = 404


class EmbeddingModelError(KBError):
    code = "embedding_model"
    status = 500


class IndexMismatchError(KBError):
    code = "index_mismatch"
    status = 409


class NetworkForbiddenError(KBError):
    """Raised if anything (e.g. Chroma's default embedder) tries to embed or download by itself."""

    code = "network_forbidden"
    status = 500


class WriterBusyError(KBError):
    """Another writer holds KB_HOME's writer lock; retrying later will work."""

    code = "writer_busy"
    status = 409


class ConfigError(KBError):
    """The settings are inconsistent; the service or command refuses to start with them."""

    code = "config"
    status = 500
