"""A whole build on a two-worker LocalCluster, and what checkpointing costs (issue: versions).

Uses the foundation benchmark's export of real code (built on first use: the Python standard
library, installed packages, C headers, Perl, npm and OpenJDK sources as one repository per
project), then runs ``python -m pipeline run`` with the default config (every stage that exists,
redaction included) on 2 workers:

1. with checkpoints (the default), twice, and without (``[execution] checkpoint = false``), twice,
   alternating, to report the overhead of checkpointing;
2. a run killed with SIGKILL once half of the partitions are checkpointed, then the same command
   again: how many partitions it reused and how long the rest took.

    python -m benchmarks.load [--min-mb 300] [--work /tmp/bench-500] [--partition-mb 32]

Prints Markdown for docs/performance.md. Not a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.foundation import make_repos, timed_run


def killed_then_resumed(export: Path, output: Path, config: Path, partitions: int) -> dict:
    shutil.rmtree(output, ignore_errors=True)
    cmd = [sys.executable, "-m", "pipeline", "run", "--version", "bench", "--input", str(export), "--output",
           str(output), "--workers", "2", "--config", str(config)]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    done = output / ".vbench.partial" / ".work" / "done"
    while len(list(done.glob("part-*.json"))) < partitions // 2:
        if proc.poll() is not None:
            raise SystemExit("the run ended before the kill point")
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = time.perf_counter() - start
    start = time.perf_counter()
    done_again = subprocess.run(cmd, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - start
    if done_again.returncode:
        raise SystemExit(done_again.stderr)
    log = done_again.stderr
    reused = re.search(r"reusing (\d+) of (\d+) partition", log)
    return {"killed_at": killed_at, "wall": wall, "reused": reused.group(0) if reused else "none"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--min-mb", type=float, default=300)
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench-500"))
    parser.add_argument("--partition-mb", type=int, default=32)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    repos, _ = make_repos(args.work, int(args.min_mb * 1e6))
    export = args.work / "export-all"
    if not (export / "orc").is_dir():
        from pipeline.export_git import export_repositories

        export_repositories(repos, export, visit_date=dt.datetime(2024, 1, 2, tzinfo=dt.UTC))
    configs = {}
    for flag in ("true", "false"):
        configs[flag] = args.work / f"load-checkpoint-{flag}.toml"
        configs[flag].write_text(f"[output]\npartition_bytes = {args.partition_mb * 1024 * 1024}\n"
                                 f"[execution]\ncheckpoint = {flag}\n")
    print("| checkpoints | run | files | content MB | wall s | MB/s (2 workers) | peak RSS per worker MiB |")
    print("|---|---|---|---|---|---|---|")
    walls: dict[str, list[float]] = {"true": [], "false": []}
    shards = {}
    for attempt in (1, 2):
        for flag in ("true", "false"):
            r = timed_run(export, args.work / f"load-{flag}", 2, configs[flag])
            m = r["manifest"]
            mb = m["walk"]["content_bytes"] / 1e6
            walls[flag].append(r["wall"])
            shards[flag] = {s["path"]: s["sha256"] for s in m["shards"]}
            print(f"| {'on' if flag == 'true' else 'off'} | {attempt} | {m['walk']['files']} | {mb:.1f} "
                  f"| {r['wall']:.1f} | {mb / r['wall']:.1f} | {r['rss']:.0f} |")
    on, off = min(walls["true"]), min(walls["false"])
    print(f"\ncheckpoint overhead (best of two each): {on:.1f} s against {off:.1f} s = {100 * (on - off) / off:+.1f}%")
    print(f"shards identical with and without checkpoints: {shards['true'] == shards['false']}")
    partitions = len({Path(p).name for p in shards["true"]})
    k = killed_then_resumed(export, args.work / "load-killed", configs["true"], partitions)
    print(f"killed at {k['killed_at']:.1f} s; the same command again: {k['reused']}, finished in {k['wall']:.1f} s "
          f"(an uninterrupted run: {on:.1f} s)")


if __name__ == "__main__":
    main()
