"""Throughput of walk + fetch + decode + write on real source code (issue: the foundation).

Builds git repositories from source trees already on this machine (the Python standard library
and installed packages: real code nobody here wrote), one repository per top-level package,
exports them with ``export-git``, then times ``python -m pipeline run`` on the export with 1 and
2 workers, sampling the resident memory of every worker process.

    python benchmarks/foundation.py [--min-mb 50] [--work /tmp/bench-foundation]

Prints a Markdown table for docs/performance.md. Not a test: nothing here asserts. "walk s" runs from
the start of the command (imports, cluster start-up and input fingerprint included) to the end of
the walk; the rest is fetch + decode + write of every partition.
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
import zipfile
from pathlib import Path

import psutil

SOURCE_SUFFIXES = {".py", ".pyi", ".pyx", ".pxd", ".c", ".h", ".hpp", ".cpp", ".cc", ".java", ".pl", ".pm", ".js",
                   ".mjs", ".ts", ".json", ".rst", ".txt", ".md", ".toml", ".cfg", ".ini", ".html", ".css", ".xml",
                   ".yaml", ".yml", ".sh"}
PACKAGES = ["pandas", "numpy", "pyarrow", "dask", "distributed", "botocore", "hypothesis", "charset_normalizer",
            "fsspec", "tornado", "aiohttp", "swh"]
MAX_REPO_BYTES = 8_000_000  # split bigger trees into one repository per subfolder, as real projects are


def source_roots(work: Path) -> list[Path]:
    """Trees of real code on this machine: Python (stdlib, packages), C headers, Perl, JavaScript, Java."""
    paths = sysconfig.get_paths()
    site = Path(paths["purelib"])
    roots = [Path(paths["stdlib"])] + [site / p for p in PACKAGES if (site / p).is_dir()]
    roots += [Path(p) for p in ("/usr/include", "/usr/share/perl", "/usr/lib/node_modules") if Path(p).is_dir()]
    jdk = sorted(Path("/usr/lib/jvm").glob("*/lib/src.zip")) if Path("/usr/lib/jvm").is_dir() else []
    if jdk:
        target = work / "jdk-src"
        if not target.is_dir():
            with zipfile.ZipFile(jdk[0]) as archive:
                archive.extractall(target)
        roots.append(target)
    return roots


def source_files(top: Path) -> list[Path]:
    return sorted(f for f in top.rglob("*") if f.is_file() and not f.is_symlink() and f.suffix in SOURCE_SUFFIXES
                  and "__pycache__" not in f.parts and "site-packages" not in f.parts)


def project_trees(root: Path) -> list[tuple[Path, list[Path]]]:
    """(folder, its files) for each project-sized folder under ``root``."""
    out = []
    for top in sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink() and p.name != "site-packages"):
        files = source_files(top)
        size = sum(f.stat().st_size for f in files)
        if size > MAX_REPO_BYTES and any(p.is_dir() for p in top.iterdir()):
            out.extend(project_trees(top))
        elif size >= 100_000:
            out.append((top, files))
    return out


def make_repos(work: Path, min_bytes: int) -> tuple[list[Path], int]:
    """One git repository per project-sized folder of real code, until ``min_bytes`` of source."""
    repos, total = [], 0
    env = {**os.environ, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.org",
           "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.org",
           "GIT_AUTHOR_DATE": "2024-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2024-01-01T00:00:00Z"}
    for root in source_roots(work):
        for top, files in project_trees(root):
            repo = work / "repos" / str(top).strip("/").replace("/", "_")
            if not (repo / ".git").is_dir():
                shutil.rmtree(repo, ignore_errors=True)
                for f in files:
                    target = repo / f.relative_to(top)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(f, target)
                subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
                subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True, env=env)
                subprocess.run(["git", "-C", str(repo), "commit", "-q", "-m", "import"], check=True, env=env)
            repos.append(repo)
            total += sum(f.stat().st_size for f in files)
            if total >= min_bytes:
                return repos, total
    return repos, total


class MemorySampler(threading.Thread):
    """Peak RSS of the run's process and of each of its children (the Dask workers), sampled every 50 ms."""

    def __init__(self, root_pid: int) -> None:
        super().__init__(daemon=True)
        self.root = psutil.Process(root_pid)
        self.peaks: dict[int, int] = {}
        self.cpu: dict[int, float] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                procs = [self.root, *self.root.children(recursive=True)]
            except psutil.Error:  # the run just ended
                break
            for proc in procs:
                try:
                    rss = proc.memory_info().rss
                    times = proc.cpu_times()
                except psutil.Error:
                    continue
                self.peaks[proc.pid] = max(self.peaks.get(proc.pid, 0), rss)
                self.cpu[proc.pid] = times.user + times.system
            time.sleep(0.05)


def timed_run(export: Path, output: Path, workers: int, config: Path) -> dict:
    """Run the CLI; wall time, walk/partition phases (from the log lines' arrival), CPU and memory.

    With one worker the whole process tree is pinned to one core (taskset), so its wall-clock rate
    is exactly a per-core rate: scheduler, driver and worker share that core.
    """
    shutil.rmtree(output, ignore_errors=True)
    pin = ["taskset", "-c", "0"] if workers == 1 and shutil.which("taskset") else []
    cmd = [*pin, sys.executable, "-m", "pipeline", "run", "--version", "bench", "--input", str(export),
           "--output", str(output), "--workers", str(workers), "--config", str(config)]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    sampler = MemorySampler(proc.pid)
    sampler.start()
    walk_done, log = None, []
    assert proc.stderr is not None
    for line in proc.stderr:
        log.append(line)
        if line.startswith("walk:") and " partition(s)" in line:
            walk_done = time.perf_counter() - start
    proc.wait()
    wall = time.perf_counter() - start
    sampler.stop.set()
    sampler.join()
    if proc.returncode:
        raise SystemExit("".join(log))
    manifest = json.loads((output / "vbench" / "manifest.json").read_text())
    return {
        "wall": wall,
        "walk": walk_done or wall,
        "cpu": sum(sampler.cpu.values()),
        # the workers' peak; a one-worker run works in the driver's own process (no worker processes)
        "rss": max(sorted((v for p, v in sampler.peaks.items() if p != proc.pid), reverse=True)[:workers]
                   or [sampler.peaks.get(proc.pid, 0)]) / 2**20,
        "manifest": manifest,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--min-mb", type=float, default=300)
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench-foundation"))
    parser.add_argument("--partition-mb", type=int, default=32)
    parser.add_argument("--redact", action="store_true",
                        help="include the redaction stage (default: walk+fetch+decode+write only)")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    repos, source_bytes = make_repos(args.work, int(args.min_mb * 1e6))
    from pipeline.export_git import export_repositories

    exports = {"all": (args.work / "export-all", repos), "half": (args.work / "export-half", repos[::2])}
    for export, subset in exports.values():
        if not (export / "orc").is_dir():
            start = time.perf_counter()
            export_repositories(subset, export, visit_date=dt.datetime(2024, 1, 2, tzinfo=dt.UTC))
            print(f"export-git: {len(subset)} repos in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    config = args.work / "config.toml"
    config.write_text(f"[output]\npartition_bytes = {args.partition_mb * 1024 * 1024}\n"
                      f"[redact]\nenabled = {'true' if args.redact else 'false'}\n")
    print("| export | workers | origins | files | content MB | wall s | of which walk s | end-to-end MB/s per worker "
          "| MB per CPU-second (all processes) | after-walk MB/s per worker | peak RSS per worker MiB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    shard_sets = {}
    for name, workers in (("all", 1), ("all", 2), ("half", 2)):
        export, subset = exports[name]
        r = timed_run(export, args.work / f"out-{name}-{workers}", workers, config)
        m = r["manifest"]
        mb = m["walk"]["content_bytes"] / 1e6
        shard_sets[(name, workers)] = {s["path"]: s["sha256"] for s in m["shards"]}
        print(f"| {name} | {workers} | {len(subset)} | {m['walk']['files']} | {mb:.1f} | {r['wall']:.1f} "
              f"| {r['walk']:.1f} | {mb / r['wall'] / workers:.1f} | {mb / r['cpu']:.1f} "
              f"| {mb / (r['wall'] - r['walk']) / workers:.1f} | {r['rss']:.0f} |")
    print(f"\nshards byte-identical with 1 and 2 workers: {shard_sets[('all', 1)] == shard_sets[('all', 2)]}")


if __name__ == "__main__":
    main()
