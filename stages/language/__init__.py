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

Layout: ``enry`` holds the libenry calls (the rule chain, the classifier, the lookups),
``guesslang`` the model and its label table; this module the config and the stage.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from functools import partial
from typing import ClassVar

import pyarrow as pa
from enry.definitions import lib

from schemas import DECODED_SCHEMA, LANGUAGE_SCHEMA
from stages.base import Lazy, Reason, RowStage, StageResult, binary_views, split
from stages.language.enry import (
    CONTENT_BYTES,
    LANGUAGE_TYPES,
    _encoded,
    classify,
    detect,
    first_lines,
    header_and_footer,
    header_languages,
    is_header,
    language_type,
    languages_by_extension,
    languages_by_filename,
)
from stages.language.guesslang import (
    GUESSLANG_BYTES,
    GUESSLANG_LANGUAGES,
    Guesslang,
    guesslang_model_dir,
    load_guesslang,
)
from stages.language.guesslang_numpy import GuesslangNumpy

__all__ = [
    "CONTENT_BYTES", "GUESSLANG_BYTES", "GUESSLANG_LANGUAGES", "LANGUAGE_TYPES", "UNKNOWN",
    "Guesslang", "Language", "LanguageConfig", "classify", "detect", "first_lines", "guesslang_model_dir",
    "header_and_footer", "language_type", "languages_by_extension", "languages_by_filename", "load_guesslang",
]

UNKNOWN = "unknown"


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
    exclude_types: tuple[str, ...] = ()
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
class Language(RowStage):
    """Language stage: DECODED_SCHEMA rows in, LANGUAGE_SCHEMA rows out.

    Reasons: ``unknown_language`` (nothing decided and ``keep_unknown`` is off),
    ``excluded_language`` (detail: the language). Counters: ``guesslang_files`` (files sent to the
    model) and ``guesslang_decided`` (files its label decided), besides ``in``, ``kept`` and reasons.
    """

    config: LanguageConfig = field(default_factory=LanguageConfig)
    name: ClassVar[str] = "language"
    reads_content: ClassVar[bool] = True

    def setup(self) -> Lazy[Guesslang] | None:
        """guesslang's model when the fallback is on (raises if it is not installed), else None. The
        model (run with numpy, ``GuesslangNumpy``: ~15 ms and ~20 MB) loads on the first file that
        needs it."""
        return Lazy(partial(GuesslangNumpy, guesslang_model_dir())) if self.config.guesslang else None

    def process(self, table: pa.Table, model: Lazy[Guesslang] | None) -> StageResult:
        """Label every row; drop unknown and excluded languages. ``model``: what ``setup()`` returned."""
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
        names = [posixpath.basename(p) for p in paths]
        # go-enry's .h heuristics for every header at once, through RE2 (None: go-enry decides each)
        headers = [i for i, name in enumerate(names) if is_header(name)]
        header_answers = header_languages([bytes(views[i][: self.config.content_bytes]) for i in headers])
        header_of = dict(zip(headers, header_answers, strict=True)) if header_answers is not None else {}
        for i, (path, view) in enumerate(zip(paths, views, strict=True)):
            data = bytes(view)
            relative = _encoded(path.lstrip("/"))
            vendor[i] = bool(lib.IsVendor(relative))
            generated[i] = bool(lib.IsGenerated(relative, data, len(data)))
            language, source, candidates = detect(names[i], data, self.config.content_bytes, header_of.get(i))
            if language is not None:
                languages[i], sources[i] = language, source
                continue
            undecided[i] = candidates
            # guesslang calls prose code: with no candidates, it only sees what enry does not call
            # documentation (README, CHANGELOG, docs/ ...); it never sees blank text
            if self.config.guesslang and data.strip() and (candidates or not lib.IsDocumentation(relative)):
                guess.append(i)
        notes = self._guess(guess, undecided, views, languages, sources, model)
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
        lazy_model: Lazy[Guesslang] | None,
    ) -> dict[int, str]:
        """guesslang on ``rows`` (in batches): sets the language of those it decides; notes on the others."""
        if not rows:
            return {}
        if lazy_model is None:
            raise RuntimeError("Language.process needs the model that setup() returns (guesslang is on)")
        model = lazy_model.get()
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

