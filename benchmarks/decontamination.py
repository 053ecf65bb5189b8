"""Speed of the decontamination stage on real source code from this machine, one core.

    python -m benchmarks.decontamination [--mb 60] [--seed 7] [--batch-mb 16] [--plant 200] [--repeat 3]

The files: the seeded sample of real files ``benchmarks/redaction.py`` takes (the Python standard
library and installed packages, /usr/include, Perl, npm's modules), about ``--mb`` MB, in batches
of about ``--batch-mb`` MB (the graph's ``batch_bytes``). ``Decontaminate.process`` (default
config: HumanEval's snippets) runs over them in this one process; speed is MB of content per CPU
second (``time.process_time``, the best of ``--repeat`` runs, as the machine is shared). For
comparison, the automaton alone over every normalised file (``Searcher.first`` on each: what the
stage did before its prefilter) on the same batches.

Then ``--plant`` HumanEval prompts and solutions, re-spaced with odd whitespace (tabs, CRLF,
Unicode spaces), are put into copies of real files; both ways must give the same detail for every
file (printed; a difference exits non-zero). Prints Markdown for docs/performance.md.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from typing import Any

import pyarrow as pa

from benchmarks.redaction import real_files
from stages.decontaminate import WHITESPACE, Decontaminate, Searcher


def batches(files: list[tuple[str, str]], batch_bytes: int) -> list[pa.Table]:
    """The files as tables of about ``batch_bytes`` of content, with the columns the stage's ledger reads."""
    out, start, size = [], 0, 0
    for i, (_, text) in enumerate(files):
        size += len(text.encode())
        if size >= batch_bytes or i == len(files) - 1:
            chunk = files[start : i + 1]
            n = len(chunk)
            out.append(pa.table({
                "blob_id": [f"{j:040x}" for j in range(start, i + 1)], "content_id": ["c"] * n,
                "origin_url": ["o"] * n, "snapshot_id": ["s"] * n, "revision_id": ["r"] * n,
                "path": [p for p, _ in chunk], "length_bytes": [len(t.encode()) for _, t in chunk],
                "content": pa.array([t for _, t in chunk], pa.large_string()),
            }))
            start, size = i + 1, 0
    return out


def best_cpu(run: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.process_time()
        result = run()
        best = min(best, time.process_time() - start)
    return best, result


def planted(files: list[tuple[str, str]], searcher: Searcher, count: int, seed: int) -> list[tuple[str, str]]:
    """Copies of real files with a HumanEval prompt or solution (or half of one) put in, re-spaced."""
    r = random.Random(seed)
    texts = [t for benchmark in searcher.benchmarks for _, item in benchmark.items for t in item]
    out = []
    for i in range(count):
        path, host = r.choice(files)
        words = r.choice(texts).split()
        spaces = [r.choice(("\t", "\r\n", "  ", "\u3000", "\xa0", "\n    ")) for _ in words]
        snippet = "".join(w + s for w, s in zip(words, spaces, strict=True)).rstrip("".join(WHITESPACE))
        if r.random() < 0.2:
            snippet = snippet[: len(snippet) // 2]
        at = r.choice((0, len(host), r.randrange(len(host) + 1)))
        out.append((f"{path}#planted-{i}", host[:at] + snippet + host[at:]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=float, default=60)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--batch-mb", type=float, default=16)
    parser.add_argument("--plant", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    stage = Decontaminate()
    start = time.process_time()
    searcher = stage.setup()
    setup_cpu = time.process_time() - start
    files = real_files(int(args.mb * 1e6), args.seed)
    tables = batches(files, int(args.batch_mb * 1e6))
    mb = sum(len(t.encode()) for _, t in files) / 1e6

    def stage_way(tables: list[pa.Table]) -> list[str | None]:
        return [d for t in tables for d in stage.process(t, searcher).dropped["detail"].to_pylist()]

    def automaton_way(tables: list[pa.Table]) -> list[str | None]:
        return [d for t in tables for d in map(searcher.first, t["content"].to_pylist()) if d is not None]

    cpu, dropped = best_cpu(lambda: stage_way(tables), args.repeat)
    base_cpu, base_dropped = best_cpu(lambda: automaton_way(tables), args.repeat)
    assert searcher.prefilter is not None
    passed = sum(len(searcher.prefilter.candidates([s.encode() for s in t["content"].to_pylist()])) for t in tables)
    print(f"{len(files)} real files, {mb:.1f} MB, in {len(tables)} batches; HumanEval's snippets "
          f"(setup {setup_cpu * 1000:.0f} CPU ms)\n")
    print("| way | MB/s per core | CPU s | files contaminated | files searched by the automaton |")
    print("|---|---|---|---|---|")
    print(f"| the stage (prefilter, then the automaton) | {mb / cpu:.0f} | {cpu:.2f} | {len(dropped)} | {passed} |")
    print(f"| the automaton alone, every file normalised | {mb / base_cpu:.0f} | {base_cpu:.2f} | {len(base_dropped)} "
          f"| {len(files)} |")

    extra = planted(files, searcher, args.plant, args.seed)
    tables = batches(extra, int(args.batch_mb * 1e6))
    by_stage = {p: d for t in tables for p, d in zip(*_dropped(stage.process(t, searcher)), strict=True)}
    by_automaton = {p: searcher.first(text) for p, text in extra}
    by_automaton = {p: d for p, d in by_automaton.items() if d is not None}
    same = by_stage == by_automaton and dropped == base_dropped
    print(f"\n{len(extra)} copies of real files with a HumanEval prompt or solution (or half of one) put in, "
          f"re-spaced: {len(by_stage)} contaminated by the stage, {len(by_automaton)} by the automaton alone; "
          f"the same file and detail every time: {'yes' if same else 'NO'}")
    print("\ncommand: python -m benchmarks.decontamination " + " ".join(sys.argv[1:]))
    if not same:
        raise SystemExit("the stage and the automaton alone disagree")


def _dropped(result: Any) -> tuple[list[str], list[str]]:
    return result.dropped["path"].to_pylist(), result.dropped["detail"].to_pylist()


if __name__ == "__main__":
    main()
