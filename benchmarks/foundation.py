"""Throughput of walk + fetch + decode + write on real source code (issue: the foundation).

Builds git repositories from source trees already on this machine (the Python standard library
and installed packages: real code nobody here wrote), one repository per top-level package,
exports them with ``export-git``, then times ``python -m pipeline run`` on the export with 1 and
2 workers, sampling the resident memory of every worker process.

    python benchmarks/foundation.py [--min-mb 50] [--work /tmp/bench-foundation]

Prints a Markdown table for docs/performance.md. Not a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import threading
import time
from pathlib import Path

import psutil

SOURCE_SUFFIXES = {".py", ".pyi", ".pyx", ".pxd", ".c", ".h", ".cpp", ".json", ".rst", ".txt", ".md", ".toml",
                   ".cfg", ".ini", ".html", ".css", ".js", ".xml", ".yaml", ".yml", ".sh"}
PACKAGES = ["pandas", "numpy", "pyarrow", "dask", "distributed", "botocore", "hypothesis", "charset_normalizer",
            "fsspec", "tornado", "aiohttp", "swh"]


def source_roots() -> list[Path]:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    site = Path(sysconfig.get_paths()["purelib"])
    return [stdlib] + [site / p for p in PACKAGES if (site / p).is_dir()]


def make_repos(work: Path, min_bytes: int) -> tuple[list[Path], int]:
    """One git repository per top-level package of each source root, until ``min_bytes`` of source."""
    repos, total = [], 0
    env = {**os.environ, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.org",
           "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.org",
           "GIT_AUTHOR_DATE": "2024-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2024-01-01T00:00:00Z"}
    for root in source_roots():
        for top in sorted(p for p in root.iterdir() if p.is_dir() and p.name not in ("site-packages", "__pycache__")):
            files = [f for f in top.rglob("*") if f.is_file() and f.suffix in SOURCE_SUFFIXES
                     and "__pycache__" not in f.parts]
            size = sum(f.stat().st_size for f in files)
            if size < 100_000:
                continue
            repo = work / "repos" / f"{root.name}-{top.name}"
            if not (repo / ".git").is_dir():
                shutil.rmtree(repo, ignore_errors=True)
                for f in files:
                    target = repo / f.relative_to(root)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(f, target)
                subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
                subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True, env=env)
                subprocess.run(["git", "-C", str(repo), "commit", "-q", "-m", "import"], check=True, env=env)
            repos.append(repo)
            total += size
            if total >= min_bytes:
                return repos, total
    return repos, total


class MemorySampler(threading.Thread):
    """Peak RSS of each child process (the Dask workers) of this process, sampled every 50 ms."""

    def __init__(self, root_pid: int) -> None:
        super().__init__(daemon=True)
        self.root = psutil.Process(root_pid)
        self.peaks: dict[int, int] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            for child in self.root.children(recursive=True):
                try:
                    rss = child.memory_info().rss
                except psutil.Error:
                    continue
                self.peaks[child.pid] = max(self.peaks.get(child.pid, 0), rss)
            time.sleep(0.05)


def timed_run(export: Path, output: Path, workers: int, config: Path) -> dict:
    shutil.rmtree(output, ignore_errors=True)
    cmd = [sys.executable, "-m", "pipeline", "run", "--version", "bench", "--input", str(export),
           "--output", str(output), "--workers", str(workers), "--config", str(config)]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    sampler = MemorySampler(proc.pid)
    sampler.start()
    _, err = proc.communicate()
    wall = time.perf_counter() - start
    sampler.stop.set()
    if proc.returncode:
        raise SystemExit(err)
    manifest = json.loads((output / "vbench" / "manifest.json").read_text())
    workers_rss = sorted(sampler.peaks.values(), reverse=True)[:workers]
    return {"workers": workers, "wall_s": wall, "manifest": manifest, "peak_worker_rss": workers_rss}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--min-mb", type=float, default=50)
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench-foundation"))
    parser.add_argument("--partition-mb", type=int, default=16)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    repos, source_bytes = make_repos(args.work, int(args.min_mb * 1e6))
    export = args.work / "export"
    if not (export / "orc").is_dir():
        start = time.perf_counter()
        from pipeline.export_git import export_repositories

        export_repositories(repos, export, visit_date=dt.datetime(2024, 1, 2, tzinfo=dt.UTC))
        print(f"export-git: {len(repos)} repos, {source_bytes / 1e6:.1f} MB in {time.perf_counter() - start:.1f} s")
    config = args.work / "config.toml"
    config.write_text(f"[output]\npartition_bytes = {args.partition_mb * 1024 * 1024}\n")
    rows = []
    for workers in (1, 2):
        result = timed_run(export, args.work / f"out-{workers}", workers, config)
        m = result["manifest"]
        mb = m["walk"]["content_bytes"] / 1e6
        rows.append((workers, len(repos), m["walk"]["files"], mb, result["wall_s"], mb / result["wall_s"] / workers,
                     max(result["peak_worker_rss"]) / 2**20, m["walk"]["partitions"]))
        shards = {s["path"]: s["sha256"] for s in m["shards"]}
        rows[-1] += (hash(frozenset(shards.items())),)
    same = rows[0][-1] == rows[1][-1]
    print("| workers | origins | files | content MB | wall s | MB/s per core | peak RSS per worker MiB | partitions |")
    print("|---|---|---|---|---|---|---|---|")
    for w, o, f, mb, wall, rate, rss, parts, _ in rows:
        print(f"| {w} | {o} | {f} | {mb:.1f} | {wall:.1f} | {rate:.1f} | {rss:.0f} | {parts} |")
    print(f"shards identical with 1 and 2 workers: {same}")


if __name__ == "__main__":
    main()
