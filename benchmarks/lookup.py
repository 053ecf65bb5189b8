"""lookup on a generated version of a million files: how long does "am I in it?" take?

Writes a version folder with the real layout (``data/<language>/part-*.parquet``,
``dropped/part-*.parquet``, ``manifest.json``) of ``--rows`` kept files and ``--dropped`` ledger rows
over ``--repos`` repositories, shards of ~100k rows, each file with ``--content-bytes`` of text (so
the scans skip a real content column). The ground truth is the generator's own count of each
target's files, never lookup's. Times are wall seconds, median of ``--repeat`` runs, in-process
(``lookup_version``) and as a fresh ``python -m pipeline lookup`` process (start-up included).

    python -m benchmarks.lookup --rows 1000000 --dropped 300000 --work /tmp/bench-lookup
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.lookup import lookup_version, parse_target
from schemas import LEDGER_SCHEMA

LANGUAGES = ["Python", "JavaScript", "Go", "C", "Java", "Rust", "Shell", "TypeScript"]
SHARD_ROWS = 100_000


def generate(folder: Path, rows: int, dropped: int, repos: int, content_bytes: int, seed: int) -> dict[str, int]:
    """Write the version; returns the ground truth: files in and out of the probed repository/owner/blob/path."""
    rng = np.random.default_rng(seed)
    owners = [f"owner{i % max(1, repos // 4):06d}" for i in range(repos)]
    urls = [f"https://github.com/{owners[i]}/repo{i:07d}" for i in range(repos)]
    names = [f"{owners[i]}/repo{i:07d}" for i in range(repos)]
    truth = {"repo_in": 0, "repo_out": 0, "owner_in": 0, "owner_out": 0, "path_in": 0, "path_out": 0}
    probe = repos // 2
    probe_owner = owners[probe]
    text = "x" * content_bytes
    (folder / "data").mkdir(parents=True, exist_ok=True)
    (folder / "dropped").mkdir(parents=True, exist_ok=True)
    for kind, total in (("in", rows), ("out", dropped)):
        for start in range(0, total, SHARD_ROWS):
            n = min(SHARD_ROWS, total - start)
            repo = rng.integers(0, repos, n)
            paths = [f"/src/m{(start + i) % 5000}.py" if i % 7 else f"/docs/README{(start + i) % 3}.md"
                     for i in range(n)]
            blobs = [f"{(start + i) * 2 + (kind == 'out'):040x}" for i in range(n)]
            truth[f"repo_{kind}"] += int((repo == probe).sum())
            truth[f"owner_{kind}"] += sum(1 for r in repo.tolist() if owners[r] == probe_owner)
            truth[f"path_{kind}"] += sum(1 for p in paths if p.startswith("/docs/README"))
            url = pa.array([urls[r] for r in repo.tolist()], pa.string())
            if kind == "in":
                language = LANGUAGES[(start // SHARD_ROWS) % len(LANGUAGES)]
                table = pa.table({
                    "blob_id": blobs, "origin_url": url, "repo_name": pa.array([names[r] for r in repo.tolist()]),
                    "path": paths, "language": [language] * n, "license_type": ["permissive"] * n,
                    "length_bytes": pa.array(np.full(n, content_bytes), pa.int64()),
                    "content": pa.array([text] * n, pa.large_string()),
                })
                out = folder / "data" / language.lower() / f"part-{start // SHARD_ROWS:05d}.parquet"
                out.parent.mkdir(exist_ok=True)
            else:
                table = pa.table({
                    "blob_id": blobs, "content_id": blobs, "origin_url": url, "snapshot_id": ["s"] * n,
                    "revision_id": ["r"] * n, "path": paths, "length_bytes": pa.array(np.full(n, 10), pa.int64()),
                    "stage": ["license"] * n, "reason": ["non_permissive"] * n, "detail": ["GPL-3.0-only"] * n,
                }, schema=LEDGER_SCHEMA)
                out = folder / "dropped" / f"part-{start // SHARD_ROWS:05d}.parquet"
            pq.write_table(table, out, compression="zstd", row_group_size=SHARD_ROWS)
    (folder / "manifest.json").write_text(json.dumps({"version": "bench", "created_at": "2026-01-01T00:00:00"}))
    truth["probe_url"], truth["probe_name"], truth["probe_owner"] = urls[probe], names[probe], probe_owner
    return truth


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dropped", type=int, default=300_000)
    parser.add_argument("--repos", type=int, default=50_000)
    parser.add_argument("--content-bytes", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench-lookup"))
    args = parser.parse_args()
    folder = args.work / "vbench"
    start = time.perf_counter()
    truth = generate(folder, args.rows, args.dropped, args.repos, args.content_bytes, args.seed)
    size = sum(f.stat().st_size for f in folder.rglob("*.parquet")) / 1e6
    print(f"generated {args.rows:,} kept + {args.dropped:,} ledger rows over {args.repos:,} repositories "
          f"in {time.perf_counter() - start:.1f} s ({size:.0f} MB)")
    probe_blob = f"{(args.rows // 2) * 2:040x}"
    targets = [
        ("repository URL", truth["probe_url"], (truth["repo_in"], truth["repo_out"])),
        ("owner/name", truth["probe_name"], (truth["repo_in"], truth["repo_out"])),
        ("owner/*", truth["probe_owner"] + "/*", (truth["owner_in"], truth["owner_out"])),
        ("blob sha1", probe_blob, (1, 0)),
        ("path glob", "/docs/README*", (truth["path_in"], truth["path_out"])),
    ]
    print("\n| target | files in / out (= ground truth) | in-process, median s | CLI process, median s |")
    print("|---|---|---|---|")
    for label, text, expected in targets:
        target = parse_target(text)
        times, answer = [], None
        for _ in range(args.repeat):
            t = time.perf_counter()
            answer = lookup_version(folder, "bench", target)
            times.append(time.perf_counter() - t)
        assert answer is not None
        got = (len(answer.kept), len(answer.dropped))
        assert got == expected, (label, got, expected)
        cli = []
        for _ in range(max(1, args.repeat // 2)):
            t = time.perf_counter()
            subprocess.run([sys.executable, "-m", "pipeline", "lookup", text, "--output", str(args.work),
                            "--version", "bench", "--limit", "0"], check=True, capture_output=True)
            cli.append(time.perf_counter() - t)
        print(f"| {label} | {got[0]:,} / {got[1]:,} | {statistics.median(times):.3f} | {statistics.median(cli):.2f} |")


if __name__ == "__main__":
    main()
