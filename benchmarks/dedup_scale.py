"""Dedup speed and memory: signatures and hashing per core, and a corpus larger than the workers' memory.

    python benchmarks/dedup_scale.py [--copies 4] [--memory-limit 700MiB] [--work /tmp/bench-500]

1. Per core, on the real source files of the foundation benchmark's repositories (run
   benchmarks/foundation.py first; it builds them): MinHash signatures (tokenising included) and
   SHA-256 (the exact-dedup key).
2. Exports those repositories ``--copies`` times under different origin URLs (forks: every copy
   after the first is an exact duplicate, as in the archive), and runs the pipeline with two local
   workers capped at ``--memory-limit`` each, redaction off, sampling every worker's memory.

Prints Markdown for docs/performance.md. Not a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.foundation import MemorySampler
from stages.dedup import DedupConfig, signatures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench-500"))
    parser.add_argument("--copies", type=int, default=4)
    parser.add_argument("--memory-limit", default="700MiB")
    args = parser.parse_args()
    repos = sorted(p for p in (args.work / "repos").iterdir() if (p / ".git").is_dir())
    texts = []
    for repo in repos[:80]:
        for f in repo.rglob("*"):
            if f.is_file() and ".git" not in f.parts:
                with contextlib.suppress(UnicodeDecodeError):
                    texts.append(f.read_text("utf-8"))
    mb = sum(len(t.encode()) for t in texts) / 1e6
    start = time.process_time()
    for i in range(0, len(texts), 500):
        signatures(texts[i : i + 500], DedupConfig())
    sig_rate = mb / (time.process_time() - start)
    encoded = [t.encode() for t in texts]
    start = time.process_time()
    for b in encoded:
        hashlib.sha256(b).hexdigest()
    hash_rate = mb / (time.process_time() - start)
    print(f"## Per core ({len(texts)} real files, {mb:.1f} MB)\n- MinHash signatures, 256 permutations, "
          f"tokenising included: {sig_rate:.1f} MB/s\n- SHA-256: {hash_rate:.0f} MB/s\n")

    export = args.work / f"export-x{args.copies}"
    if not (export / "orc").is_dir():
        from pipeline.export_git import export_repositories

        urls = [f"https://github.com/fork{c}/{r.name}" for c in range(args.copies) for r in repos]
        export_repositories(repos * args.copies, export, origin_urls=urls)
    config = args.work / "dedup-scale.toml"
    config.write_text("[redact]\nenabled = false\n[output]\npartition_bytes = 67108864\n")
    output = args.work / "out-dedup-scale"
    shutil.rmtree(output, ignore_errors=True)
    cmd = [sys.executable, "-m", "pipeline", "run", "--version", "s", "--input", str(export), "--output", str(output),
           "--workers", "2", "--memory-limit", args.memory_limit, "--config", str(config)]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    sampler = MemorySampler(proc.pid)
    sampler.start()
    _, err = proc.communicate()
    wall = time.perf_counter() - start
    sampler.stop.set()
    if proc.returncode:
        raise SystemExit(err)
    manifest = json.loads((output / "vs" / "manifest.json").read_text())
    rss = sorted(sampler.peaks.values(), reverse=True)
    stages = {s["name"]: s for s in manifest["stages"]}
    content = manifest["walk"]["content_bytes"] / 1e6
    print(f"## {args.copies} copies of {len(repos)} repositories, 2 workers capped at {args.memory_limit}\n"
          f"- {manifest['walk']['files']} files, {content:.0f} MB of content, {manifest['walk']['partitions']} "
          f"partitions, {wall:.0f} s wall, {content / wall:.1f} MB/s\n"
          f"- exact duplicates {stages['exact_dedup']['dropped']}, near duplicates {stages['near_dedup']['dropped']}, "
          f"{stages['near_dedup']['counters']}\n"
          f"- peak RSS of the two workers: {rss[0] / 2**20:.0f} and {rss[1] / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
