"""Speed of the language and filters stages on real source code from this machine, one core.

    python -m benchmarks.language_speed [--mb 120] [--partition-mb 32] [--seed 7] [--repeat 3] [--content-bytes N]

A seeded sample of real files, about ``--mb`` MB in equal shares from six ecosystems: Python (the
standard library and installed packages), C and C++ (/usr/include and installed packages' headers
and sources), Java (the JDK's src.zip), JavaScript (npm's node_modules), Perl (/usr/share/perl)
and the rest (shell, CMake, Vim script, Tcl, PHP, YAML, JSON ...), named by their paths inside their
package as in a repository. They go through ``Language`` then ``Filters`` (default configurations,
guesslang on; ``--content-bytes`` sets the language stage's) in partitions of about
``--partition-mb`` MB, in this one process.

Speed is MB of input per CPU second of this process (``time.process_time``: all its threads,
TensorFlow's included; the best of ``--repeat`` runs, as the machine is shared), overall and per
ecosystem (each ecosystem's files as partitions of their own).
Also: the share of files that went to guesslang and the batch size it used, and what was dropped.
Prints Markdown for docs/language.md. Not a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import random
import sys
import sysconfig
import time
import zipfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from benchmarks.language_quality import decoded_table
from stages.filters import Filters
from stages.language import CONTENT_BYTES, Language, LanguageConfig

STDLIB = Path(sysconfig.get_paths()["stdlib"])
SITE = Path(sysconfig.get_paths()["purelib"])
MAX_BYTES = 2_000_000
File = tuple[str, bytes]


def _tree(root: Path, suffixes: tuple[str, ...]) -> Iterator[tuple[str, Path]]:
    if root.is_dir():
        for path in root.rglob("*"):
            if path.suffix in suffixes and path.is_file() and not path.is_symlink():
                yield str(path.relative_to(root)), path


ECOSYSTEMS = {
    "Python": lambda: [*_tree(STDLIB, (".py",)), *_tree(SITE, (".py", ".pyi"))],
    "C/C++": lambda: [
        *_tree(Path("/usr/include"), (".h", ".hpp", ".tcc")),
        *_tree(SITE, (".h", ".hpp", ".c", ".cc", ".cpp", ".cxx")),
    ],
    "Java": lambda: [],  # read from the JDK's src.zip (below)
    "JavaScript": lambda: [*_tree(Path("/usr/lib/node_modules"), (".js", ".mjs", ".cjs", ".ts"))],
    "Perl": lambda: [*_tree(Path("/usr/share/perl"), (".pm", ".pl")), *_tree(Path("/usr/share/perl5"), (".pm",))],
    "other": lambda: [
        *_tree(Path("/usr/share"), (".sh", ".cmake", ".vim", ".tcl", ".el", ".awk", ".m4")),
        *_tree(Path("/usr/lib/google-cloud-sdk"), (".php", ".yaml", ".sh", ".json")),
        *_tree(SITE, (".pyx", ".pxd", ".f90", ".toml", ".cfg", ".json", ".yaml", ".js", ".css", ".html")),
    ],
}


def _java(budget: int, seed: int) -> list[tuple[str, bytes]]:
    sources = sorted(Path("/usr/lib/jvm").glob("*/lib/src.zip")) + sorted(Path("/usr/lib/jvm").glob("*/src.zip"))
    if not sources:
        return []
    with zipfile.ZipFile(sources[0]) as archive:
        names = sorted(n for n in archive.namelist() if n.endswith(".java"))
        random.Random(seed).shuffle(names)
        out, total = [], 0
        for name in names:
            data = archive.read(name)
            if data and len(data) <= MAX_BYTES:
                out.append((name, data))
                total += len(data)
            if total >= budget:
                break
    return out


def sample(mb: float, seed: int) -> dict[str, list[tuple[str, bytes]]]:
    """About ``mb`` MB of UTF-8 files, an equal share from each ecosystem that has files here."""
    budget = int(mb * 1e6 / len(ECOSYSTEMS))
    out: dict[str, list[tuple[str, bytes]]] = {}
    for name, listing in ECOSYSTEMS.items():
        if name == "Java":
            out[name] = _java(budget, seed)
            continue
        candidates = sorted(listing())
        random.Random(f"{seed}:{name}").shuffle(candidates)
        files, total = [], 0
        for relative, path in candidates:
            data = path.read_bytes()
            if not data or len(data) > MAX_BYTES or b"\x00" in data[:8192]:
                continue
            try:
                data.decode("utf-8")
            except UnicodeDecodeError:
                continue
            files.append((relative, data))
            total += len(data)
            if total >= budget:
                break
        out[name] = files
    return {name: files for name, files in out.items() if files}


def partitions(files: list[tuple[str, bytes]], partition_bytes: int) -> Iterator[list[tuple[str, bytes]]]:
    batch: list[tuple[str, bytes]] = []
    size = 0
    for f in files:
        batch.append(f)
        size += len(f[1])
        if size >= partition_bytes:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def run(
    files: list[File], partition_bytes: int, language: Language, filters: Filters, resources: tuple[Path | None, None],
    repeat: int,
) -> dict:
    """CPU seconds of each stage over ``files`` in partitions (the best of ``repeat`` runs), and the counters.

    ``resources``: what ``language.setup()`` and ``filters.setup()`` returned."""
    tables = [decoded_table([p for p, _ in part], [d for _, d in part]) for part in partitions(files, partition_bytes)]
    best = {"language": float("inf"), "filters": float("inf")}
    for _ in range(repeat):
        seconds = {"language": 0.0, "filters": 0.0}
        counters: Counter[str] = Counter()
        for table in tables:
            start = time.process_time()
            labelled = language.process(table, resources[0])
            middle = time.process_time()
            filtered = filters.process(labelled.kept, resources[1])
            seconds["language"] += middle - start
            seconds["filters"] += time.process_time() - middle
            counters.update({f"language.{k}": v for k, v in labelled.counters.items()})
            counters.update({f"filters.{k}": v for k, v in filtered.counters.items()})
        best = {stage: min(best[stage], seconds[stage]) for stage in best}
    return {"seconds": best, "counters": counters, "files": len(files), "mb": sum(len(d) for _, d in files) / 1e6}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=float, default=120.0)
    parser.add_argument("--partition-mb", type=float, default=32.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; the fastest counts")
    parser.add_argument("--content-bytes", type=int, default=CONTENT_BYTES, help="[language] content_bytes")
    args = parser.parse_args(argv)

    by_ecosystem = sample(args.mb, args.seed)
    language, filters = Language(LanguageConfig(content_bytes=args.content_bytes)), Filters()
    start = time.process_time()
    resources = (language.setup(), filters.setup())
    setup_seconds = time.process_time() - start
    partition_bytes = int(args.partition_mb * 1e6)
    everything = [f for files in by_ecosystem.values() for f in files]
    random.Random(args.seed).shuffle(everything)
    total = run(everything, partition_bytes, language, filters, resources, args.repeat)
    command = (
        f"python -m benchmarks.language_speed --mb {args.mb:g} --partition-mb {args.partition_mb:g} "
        f"--seed {args.seed} --repeat {args.repeat} --content-bytes {args.content_bytes}"
    )
    print(f"`{command}`: {total['files']} files, {total['mb']:.1f} MB; one process; CPU time, the best of "
          f"{args.repeat} runs (setup, i.e. loading guesslang's model: {setup_seconds:.1f} s, not counted)\n")
    print("| files | MB | language MB/s | filters MB/s | language + filters MB/s | to guesslang |")
    print("|---|---:|---:|---:|---:|---:|")
    rows = [(name, run(files, partition_bytes, language, filters, resources, args.repeat))
            for name, files in by_ecosystem.items()]
    for name, result in [*rows, ("**all, mixed**", total)]:
        s = result["seconds"]
        c = result["counters"]
        print(f"| {name} ({result['files']}) | {result['mb']:.1f} | {result['mb'] / s['language']:.1f} "
              f"| {result['mb'] / s['filters']:.1f} | {result['mb'] / (s['language'] + s['filters']):.1f} "
              f"| {c['language.guesslang_files'] / result['files']:.2%} |")
    c = total["counters"]
    print(f"\nguesslang: {c['language.guesslang_files']} files sent in batches of up to "
          f"{language.config.guesslang_batch}, {c['language.guesslang_decided']} decided by it.")
    counts = {"in", "kept", "guesslang_files", "guesslang_decided"}
    dropped = {k: v for k, v in sorted(c.items()) if k.split(".")[1] not in counts}
    print("Dropped: " + ", ".join(f"{k} {v}" for k, v in dropped.items())
          + f"; kept {c['filters.kept']} of {c['language.in']}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
