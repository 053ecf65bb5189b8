"""go-enry's strategies, called through libenry (enry-python's cffi library): the rule chain of the
language stage (``detect``), its classifier (``classify``), and the lookups the stage and its
config use (``languages_by_filename``, ``languages_by_extension``, ``language_type``,
``first_lines``, ``header_and_footer``)."""

from __future__ import annotations

import re
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from enry._c_enry import ffi
from enry.definitions import lib
from enry.utils import go_str_slice_to_py

#: go-enry's language types (``enry.get_language_type``).
LANGUAGE_TYPES = ("data", "markup", "programming", "prose")

#: What the content rules read of a file by default (see docs/language.md for the measured trade-off).
CONTENT_BYTES = 32_768


def detect(name: str, data: bytes, content_bytes: int = CONTENT_BYTES,
           header: str | None = None) -> tuple[str | None, str, tuple[str, ...]]:
    """go-enry's strategies but the classifier on file ``name`` (a base name) with text ``data``.

    Returns ``(language, source, ())`` when a rule decided, else ``(None, "none", candidates)``:
    what the classifier would choose among (empty when no rule matched at all). Only the first
    ``content_bytes`` of ``data`` reach the heuristics. ``header``: the answer of go-enry's ``.h``
    heuristics for this file, computed ahead (``header_languages``); used when they are reached.
    """
    candidates: tuple[str, ...] = ()
    head_foot = header_and_footer(data)
    if _MODELINE_HINT.search(head_foot):  # most files have none: skip the call
        found = _strategy(lib.GetLanguagesByModeline, b"", head_foot)
        if len(found) == 1:
            return found[0], "modeline", ()
        candidates = found or candidates
    found = languages_by_filename(name)
    if len(found) == 1:
        return found[0], "filename", ()
    candidates = found or candidates
    if data.startswith(b"#!"):
        found = _strategy(lib.GetLanguagesByShebang, b"", data[:_SHEBANG_BYTES])
        if len(found) == 1:
            return found[0], "shebang", ()
        candidates = found or candidates
    found = languages_by_extension(_dotted_suffix(name))
    if len(found) == 1:
        return found[0], "extension", ()
    candidates = found or candidates
    if not candidates and _XML_DECLARATION in first_lines(data, 2):
        return "XML", "xml", ()
    if _MANPAGE.search(name.lower()):
        candidates = ("Roff Manpage", "Roff")
    if "." in name:
        if header is not None and is_header(name):
            found: tuple[str, ...] = (header,)
        else:
            found = _strategy(lib.GetLanguagesByContent, _encoded(name), data[:content_bytes])
        if len(found) == 1:
            return found[0], "heuristics", ()
        candidates = found or candidates
    return None, "none", candidates


# go-enry's content heuristics for ``.h`` files, its rules verbatim: Objective-C if the first matches,
# else C++ if the second does, else C. Go's regexp scans every C header with every rule
# (docs/language.md); RE2 (through Arrow, over many files at once) has Go's syntax and semantics
# (ASCII ``\s``, ``\w`` and ``\b``, ``(?m)`` anchors), at the speed docs/performance.md gives
# ("Language and filters"). ``header_rules_hold`` checks that the installed libenry holds these very
# strings (else go-enry decides, as before); the tests compare the answers with libenry's on up to
# 3,000 headers of the machine and on edge cases.
H_OBJECTIVE_C = (r"^\s*(@(interface|class|protocol|property|end|synchronised|selector|implementation)\b"
                 r'|#import\s+.+\.h[">])')
H_CPP = (r"^\s*#\s*include <(cstdint|string|vector|map|list|array|bitset|queue|stack|forward_list|unordered_map"
         r"|unordered_set|(i|o|io)stream)>|^\s*template\s*<|^[ \t]*(try|constexpr)|^[ \t]*catch\s*\(|^[ \t]*(class"
         r"|(using[ \t]+)?namespace)\s+\w+|^[ \t]*(private|public|protected):$|__has_cpp_attribute|__cplusplus >"
         r"|std::\w+")


def is_header(name: str) -> bool:
    """Whether go-enry's content heuristics for ``name`` are those of ``.h`` (its last extension, any case)."""
    return name[-2:].lower() == ".h"


@cache
def header_rules_hold() -> bool:
    """Whether the installed libenry holds ``H_OBJECTIVE_C`` and ``H_CPP`` as they are written here."""
    import mmap

    from enry import definitions

    try:
        with open(Path(definitions.__file__).with_name("libenry.so"), "rb") as f, \
                mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as library:
            return all(library.find(rule.encode()) >= 0 for rule in (H_OBJECTIVE_C, H_CPP))
    except (OSError, ValueError):
        return False


def header_languages(texts: list[bytes]) -> list[str] | None:
    """go-enry's ``.h`` heuristics on each text (already cut to what they read): ``Objective-C``,
    ``C++`` or ``C``; None when the installed libenry's rules are not these (go-enry then decides)."""
    if not header_rules_hold():
        return None
    if not texts:
        return []
    array = pa.array(texts, pa.binary())
    objective_c = pc.match_substring_regex(array, "(?m)" + H_OBJECTIVE_C).to_pylist()
    cpp = pc.match_substring_regex(array, "(?m)" + H_CPP).to_pylist()
    return ["Objective-C" if o else "C++" if c else "C" for o, c in zip(objective_c, cpp, strict=True)]


def classify(name: str, data: bytes, candidates: tuple[str, ...], content_bytes: int = CONTENT_BYTES) -> str:
    """go-enry's classifier's choice among ``candidates`` for file ``name`` with text ``data``.

    libenry only offers it at the end of its whole chain, which ends there for these files.
    """
    prefix = data[:content_bytes]
    ranking = [c for c in _languages(lib.GetLanguages(_encoded(name), prefix, len(prefix))) if c in candidates]
    return ranking[0] if ranking else candidates[0]


# enry-python's singular wrappers report ``safe=True`` for any non-empty answer, and it does not wrap
# the plural strategies at all: call libenry's plural functions directly (same cffi library).
_NULL = ffi.NULL
_SHEBANG_BYTES = 4096  # the interpreter line, and go-enry's look at the next lines for `exec`
_XML_DECLARATION = b"xml version="  # go-enry's pattern is `<?xml version=`, whose `<?` is optional
_MANPAGE = re.compile(r"\.(?:[1-9](?:[a-z_]+[a-z_0-9]*)?|0p|n|man|mdoc)(?:\.in)?$")
# go-enry's Emacs pattern needs `-*-`, its Vim pattern `ft=`, `filetype=` or `syntax=`
_MODELINE_HINT = re.compile(rb"-\*-|(?i:filetype|ft|syntax)\s*=")


def _encoded(name: str) -> bytes:
    return name.encode("utf-8", "surrogateescape")


def _languages(result: Any) -> tuple[str, ...]:
    return tuple(go_str_slice_to_py(lib, result))


def _strategy(function: Any, filename: bytes, data: bytes) -> tuple[str, ...]:
    return _languages(function(filename, data, len(data), _NULL))


@lru_cache(maxsize=1 << 16)
def languages_by_filename(name: str) -> tuple[str, ...]:
    """go-enry's filename strategy (exact base names such as ``Makefile``)."""
    return _strategy(lib.GetLanguagesByFilename, _encoded(name), b"")


@lru_cache(maxsize=1 << 16)
def languages_by_extension(suffix: str) -> tuple[str, ...]:
    """go-enry's extension strategy on ``suffix``, the lowercased name from its first dot."""
    if not suffix:
        return ()
    return _strategy(lib.GetLanguagesByExtension, _encoded(suffix), b"")


def _dotted_suffix(name: str) -> str:
    # go-enry tries every dotted suffix of the lowercased name, longest first: its answer depends
    # on the name from its first dot only, which makes a small cache key (".py", ".tar.gz")
    dot = name.find(".")
    return "" if dot < 0 else name[dot:].lower()


@lru_cache(maxsize=4096)
def language_type(language: str) -> str:
    """go-enry's type of ``language``: data, markup, programming, prose, or unknown."""
    result = lib.GetLanguageType(language.encode("utf-8"))
    if result == _NULL:
        return "unknown"
    try:
        return ffi.string(result).decode("utf-8") or "unknown"
    finally:
        lib.FreeCString(result)


def first_lines(data: bytes, count: int) -> bytes:
    """The first ``count`` lines of ``data`` without the last newline (all of it when shorter)."""
    end = -1
    for _ in range(count):
        end = data.find(b"\n", end + 1)
        if end < 0:
            return data
    return data[:end]


def header_and_footer(data: bytes) -> bytes:
    """What go-enry's modeline strategy reads: the first 5 and last 5 lines (the whole text when short)."""
    if data.count(b"\n") < 10:
        return data
    head = -1
    for _ in range(5):
        head = data.find(b"\n", head + 1)
    foot = len(data)
    for _ in range(5):
        foot = data.rfind(b"\n", 0, foot)
    return data[:head] + data[foot + 1 :]
