"""Language: the Linguist name of each file, the rule that decided it, and go-enry's vendored / generated flags.

go-enry (the engine The Stack v2 used) runs first, in its own order; a strategy that returns one
language decides, one that returns several passes them on as candidates:

1. ``modeline``: an Emacs ``-*- mode: ... -*-`` or Vim ``ft=...`` line among the first and last 5 lines;
2. ``filename``: ``Makefile``, ``Dockerfile``, ``.bashrc`` ...;
3. ``shebang``: ``#!/usr/bin/env python3``;
4. ``extension``;
5. ``xml``: no candidates yet and an XML declaration in the first two lines;
6. man-page extensions (``.1`` ... ``.9``, ``.man``, ``.mdoc``): candidates Roff Manpage, Roff;
7. ``heuristics``: Linguist's content rules for shared extensions (``.h``, ``.m``, ``.pl``, ``.inc`` ...);
8. ``classifier``: go-enry's naive Bayes over the candidates that are left.

guesslang's trained model is the content fallback for text that enry leaves undecided:

- no candidate at all (no known name, extension, shebang or modeline): the model's most probable
  label, if its probability reaches ``guesslang_threshold`` (0.9); else ``unknown``. Paths enry
  calls documentation (README, CHANGELOG, docs/ ...) and blank files are not sent: the model
  calls prose code.
- several candidates the heuristics could not separate (``.pl``: Perl, Prolog or Raku): the
  candidate the model finds most probable, if its share of the candidates' probability reaches
  the threshold; else go-enry's classifier chooses, as it would alone.

The files of a ``process()`` call go to the model together, in batches of ``guesslang_batch``.
The 54 labels map to Linguist names (``GUESSLANG_LANGUAGES``). docs/language.md has the measures
behind these choices.

The heuristics and the classifier read the first ``content_bytes`` (32 KiB; go-enry's classifier
reads at most 100,000 bytes, its heuristics the whole file); guesslang reads the first 10,001
bytes (its 10,000 byte bigrams). ``is_vendor`` is enry's on the path relative to the repository
root (its patterns expect no leading ``/``); ``is_generated`` is enry's on the whole file.
"""

from __future__ import annotations

import importlib.util
import json
import os
import posixpath
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import pyarrow as pa
from enry._c_enry import ffi
from enry.definitions import lib
from enry.utils import go_str_slice_to_py

from schemas import DECODED_SCHEMA, LANGUAGE_SCHEMA
from stages.base import Reason, StageResult, binary_views, split

UNKNOWN = "unknown"
#: go-enry's language types (``enry.get_language_type``).
LANGUAGE_TYPES = ("data", "markup", "programming", "prose")

#: guesslang's 54 labels (its ``languages.json`` names) → Linguist names. The first name is the
#: answer when enry had no candidates; with candidates, any of the names may match one.
#: Fortran is trained on ``.f90`` (Linguist: Fortran Free Form); "Visual Basic" on ``.vba``, but
#: GitHub's Visual Basic is mostly VB.NET; "Objective-C" on ``.mm`` (Objective-C++ in Linguist).
GUESSLANG_LANGUAGES: dict[str, tuple[str, ...]] = {
    "Assembly": ("Assembly", "Unix Assembly", "Motorola 68K Assembly"),
    "Batchfile": ("Batchfile",),
    "C": ("C",),
    "C#": ("C#",),
    "C++": ("C++",),
    "Clojure": ("Clojure",),
    "CMake": ("CMake",),
    "COBOL": ("COBOL",),
    "CoffeeScript": ("CoffeeScript",),
    "CSS": ("CSS",),
    "CSV": ("CSV",),
    "Dart": ("Dart",),
    "DM": ("DM",),
    "Dockerfile": ("Dockerfile",),
    "Elixir": ("Elixir",),
    "Erlang": ("Erlang",),
    "Fortran": ("Fortran Free Form", "Fortran"),
    "Go": ("Go",),
    "Groovy": ("Groovy",),
    "Haskell": ("Haskell",),
    "HTML": ("HTML",),
    "INI": ("INI",),
    "Java": ("Java",),
    "JavaScript": ("JavaScript",),
    "JSON": ("JSON", "JSON with Comments"),
    "Julia": ("Julia",),
    "Kotlin": ("Kotlin",),
    "Lisp": ("Common Lisp", "Emacs Lisp", "NewLisp"),
    "Lua": ("Lua",),
    "Makefile": ("Makefile",),
    "Markdown": ("Markdown",),
    "Matlab": ("MATLAB",),
    "Objective-C": ("Objective-C", "Objective-C++"),
    "OCaml": ("OCaml",),
    "Pascal": ("Pascal",),
    "Perl": ("Perl",),
    "PHP": ("PHP",),
    "PowerShell": ("PowerShell",),
    "Prolog": ("Prolog",),
    "Python": ("Python",),
    "R": ("R",),
    "Ruby": ("Ruby",),
    "Rust": ("Rust",),
    "Scala": ("Scala",),
    "Shell": ("Shell",),
    "SQL": ("SQL", "PLSQL", "PLpgSQL", "TSQL", "SQLPL"),
    "Swift": ("Swift",),
    "TeX": ("TeX",),
    "TOML": ("TOML",),
    "TypeScript": ("TypeScript", "TSX"),
    "Verilog": ("Verilog", "SystemVerilog"),
    "Visual Basic": ("Visual Basic .NET", "VBA", "Visual Basic 6.0", "VBScript"),
    "XML": ("XML",),
    "YAML": ("YAML",),
}

#: What the content rules read of a file by default (see docs/language.md for the measured trade-off).
CONTENT_BYTES = 32_768
#: guesslang's feature: the first 10,000 byte bigrams of the text, i.e. its first 10,001 bytes.
GUESSLANG_BYTES = 10_001


@dataclass(frozen=True)
class LanguageConfig:
    """What the language stage keeps and how it decides (TOML section ``[language]``).

    - ``guesslang``: use guesslang's model where enry is undecided (no candidate, or candidates
      the heuristics could not separate).
    - ``guesslang_threshold``: the probability guesslang's label needs to be taken (0..1); with
      candidates, the label's share of the candidates' probability.
    - ``guesslang_batch``: files per model call.
    - ``content_bytes``: the prefix of each file that the heuristics and the classifier read
      (at least 1024; go-enry's classifier reads at most 100,000 bytes).
    - ``keep_unknown``: keep files no rule decided (``language = "unknown"``) instead of dropping
      them (``unknown_language``).
    - ``languages``: the Linguist names to keep; empty = every language whose go-enry type is
      not in ``exclude_types``, minus ``exclude_languages``.
    - ``exclude_types``: go-enry types left out of the default set (data, markup, programming, prose).
    - ``exclude_languages``: Linguist names left out of the default set.
    """

    guesslang: bool = True
    guesslang_threshold: float = 0.9
    guesslang_batch: int = 256
    content_bytes: int = CONTENT_BYTES
    keep_unknown: bool = False
    languages: tuple[str, ...] = ()
    exclude_types: tuple[str, ...] = ("prose",)
    exclude_languages: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not 0.0 <= self.guesslang_threshold <= 1.0:
            raise ValueError(f"[language] guesslang_threshold must be within 0..1, got {self.guesslang_threshold}")
        if self.guesslang_batch < 1:
            raise ValueError(f"[language] guesslang_batch must be at least 1, got {self.guesslang_batch}")
        if self.content_bytes < 1024:
            raise ValueError(f"[language] content_bytes must be at least 1024, got {self.content_bytes}")
        unknown_types = sorted(set(self.exclude_types) - set(LANGUAGE_TYPES))
        if unknown_types:
            raise ValueError(f"[language] exclude_types: unknown {unknown_types}; known: {list(LANGUAGE_TYPES)}")
        unknown_names = sorted(n for n in (*self.languages, *self.exclude_languages) if language_type(n) == "unknown")
        if unknown_names:
            raise ValueError(f"[language] not go-enry (Linguist) language names: {unknown_names}")

    def keeps(self, language: str) -> bool:
        """Whether files of ``language`` (a Linguist name) are kept."""
        if self.languages:
            return language in self.languages
        return language_type(language) not in self.exclude_types and language not in self.exclude_languages


@dataclass(frozen=True)
class Language:
    """Language stage: DECODED_SCHEMA rows in, LANGUAGE_SCHEMA rows out.

    Reasons: ``unknown_language`` (nothing decided and ``keep_unknown`` is off),
    ``excluded_language`` (detail: the language). Counters: ``guesslang_files`` (files sent to the
    model) and ``guesslang_decided`` (files its label decided), besides ``in``, ``kept`` and reasons.
    """

    config: LanguageConfig = field(default_factory=LanguageConfig)
    name: str = "language"

    def setup(self) -> None:
        """Check that guesslang's model is installed when the fallback is on. The model itself
        (TensorFlow: seconds and ~300 MiB) loads once per process on the first file that needs it,
        so a worker whose files enry decides alone never pays for it."""
        object.__setattr__(self, "_guesslang_ready", bool(self.config.guesslang and guesslang_model_dir()))

    def process(self, table: pa.Table) -> StageResult:
        """Label every row; drop unknown and excluded languages. Needs ``setup()``."""
        if table.schema != DECODED_SCHEMA:
            table = table.select(DECODED_SCHEMA.names).cast(DECODED_SCHEMA)
        paths = table["path"].to_pylist()
        views = binary_views(table["content"])
        n = table.num_rows
        languages: list[str] = [UNKNOWN] * n
        sources: list[str] = ["none"] * n
        vendor: list[bool] = [False] * n
        generated: list[bool] = [False] * n
        undecided: dict[int, tuple[str, ...]] = {}  # rows no rule decided, with the classifier's candidates
        guess: list[int] = []  # the rows guesslang sees
        for i, (path, view) in enumerate(zip(paths, views, strict=True)):
            data = bytes(view)
            relative = _encoded(path.lstrip("/"))
            vendor[i] = bool(lib.IsVendor(relative))
            generated[i] = bool(lib.IsGenerated(relative, data, len(data)))
            language, source, candidates = detect(posixpath.basename(path), data, self.config.content_bytes)
            if language is not None:
                languages[i], sources[i] = language, source
                continue
            undecided[i] = candidates
            # guesslang calls prose code: with no candidates, it only sees what enry does not call
            # documentation (README, CHANGELOG, docs/ ...); it never sees blank text
            if self.config.guesslang and data.strip() and (candidates or not lib.IsDocumentation(relative)):
                guess.append(i)
        notes = self._guess(guess, undecided, views, languages, sources)
        for i, candidates in undecided.items():
            if candidates and sources[i] == "none":
                name = posixpath.basename(paths[i])
                languages[i] = classify(name, bytes(views[i]), candidates, self.config.content_bytes)
                sources[i] = "classifier"
        reasons: list[Reason | None] = [None] * n
        details: list[str | None] = [None] * n
        for i, language in enumerate(languages):
            if language == UNKNOWN:
                if not self.config.keep_unknown:
                    reasons[i] = Reason.UNKNOWN_LANGUAGE
                    details[i] = "no rule matched" + (f"; {notes[i]}" if i in notes else "")
            elif not self.config.keeps(language):
                reasons[i], details[i] = Reason.EXCLUDED_LANGUAGE, language
        added = {
            "language": pa.array(languages, pa.string()),
            "language_source": pa.array(sources, pa.string()),
            "is_vendor": pa.array(vendor, pa.bool_()),
            "is_generated": pa.array(generated, pa.bool_()),
        }
        labelled = pa.table(
            [added[f.name] if f.name in added else table[f.name] for f in LANGUAGE_SCHEMA], schema=LANGUAGE_SCHEMA
        )
        kept, dropped, counters = split(self.name, labelled, reasons, details)
        counters["guesslang_files"] = len(guess)
        counters["guesslang_decided"] = sources.count("guesslang")
        return StageResult(kept, dropped, counters)

    def _guess(
        self,
        rows: list[int],
        candidates: dict[int, tuple[str, ...]],
        views: list[memoryview],
        languages: list[str],
        sources: list[str],
    ) -> dict[int, str]:
        """guesslang on ``rows`` (in batches): sets the language of those it decides; notes on the others."""
        if not rows:
            return {}
        if not getattr(self, "_guesslang_ready", False):
            raise RuntimeError("Language.process needs setup() first (guesslang's model is not checked)")
        model = load_guesslang()
        threshold = self.config.guesslang_threshold
        texts = [bytes(views[i][:GUESSLANG_BYTES]) for i in rows]
        notes = {}
        for i, scores in zip(rows, model.scores(texts, self.config.guesslang_batch), strict=True):
            best, probability = model.best(scores, candidates[i])
            if best is not None and probability >= threshold:
                languages[i], sources[i] = best, "guesslang"
            elif best is not None:
                notes[i] = f"guesslang {best} {probability:.2f} < {threshold}"
        return notes


def detect(name: str, data: bytes, content_bytes: int = CONTENT_BYTES) -> tuple[str | None, str, tuple[str, ...]]:
    """go-enry's strategies but the classifier on file ``name`` (a base name) with text ``data``.

    Returns ``(language, source, ())`` when a rule decided, else ``(None, "none", candidates)``:
    what the classifier would choose among (empty when no rule matched at all). Only the first
    ``content_bytes`` of ``data`` reach the heuristics.
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
        found = _strategy(lib.GetLanguagesByContent, _encoded(name), data[:content_bytes])
        if len(found) == 1:
            return found[0], "heuristics", ()
        candidates = found or candidates
    return None, "none", candidates


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


class Guesslang:
    """guesslang's trained model (TensorFlow SavedModel), loaded once per process."""

    def __init__(self, model_dir: Path) -> None:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # the same numbers on every x86 CPU
        import tensorflow as tf  # only here: the stage imports without TensorFlow when the fallback is off

        try:  # workers are one-thread processes
            tf.config.threading.set_intra_op_parallelism_threads(1)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        except RuntimeError:  # TensorFlow already started in this process: its threads stay as they are
            pass
        self._tf = tf
        self._predict = tf.saved_model.load(str(model_dir)).signatures["serving_default"]
        names = {ext: name for name, ext in json.loads((model_dir.parent / "languages.json").read_text()).items()}
        classes = self._predict(inputs=tf.constant([b""]))["classes"].numpy()[0]
        #: the Linguist names of each output column
        self.columns: list[tuple[str, ...]] = [GUESSLANG_LANGUAGES[names[c.decode()]] for c in classes]

    def scores(self, texts: list[bytes], batch: int) -> list[list[float]]:
        """The model's probabilities (one list per text, in ``columns`` order)."""
        out: list[list[float]] = []
        for start in range(0, len(texts), batch):
            result = self._predict(inputs=self._tf.constant(texts[start : start + batch]))
            out.extend(result["scores"].numpy().tolist())
        return out

    def best(self, scores: list[float], candidates: tuple[str, ...] = ()) -> tuple[str | None, float]:
        """The most probable language and its probability.

        With ``candidates``, only the labels that name one count, and the probability is the
        label's share of theirs (how sure the model is *between* the candidates); None when the
        model knows none of them.
        """
        if not candidates:
            column = max(range(len(scores)), key=scores.__getitem__)
            return self.columns[column][0], scores[column]
        best, top, total = None, -1.0, 0.0
        for names, p in zip(self.columns, scores, strict=True):
            match = next((c for c in names if c in candidates), None)
            if match is None:
                continue
            total += p
            if p > top:
                best, top = match, p
        return best, (top / total if total > 0 else 0.0)


def guesslang_model_dir() -> Path:
    """Where guesslang's SavedModel lies in its installed package (installed ``--no-deps``; never imported)."""
    spec = importlib.util.find_spec("guesslang")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("[language] guesslang = true needs the guesslang package "
                           "(pip install --no-deps guesslang==2.2.1), or set guesslang = false")
    return Path(spec.submodule_search_locations[0]) / "data" / "model"


@lru_cache(maxsize=1)
def load_guesslang() -> Guesslang:
    """guesslang's model, loaded once per process."""
    return Guesslang(guesslang_model_dir())
