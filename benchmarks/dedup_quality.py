"""Near-dedup quality against ground truth nobody tuned: released versions of real projects.

    python benchmarks/dedup_quality.py [--work /tmp/bench-dedup]

1. Downloads the source distributions of several released versions of real projects from PyPI
   (requests, attrs, packaging, click, idna, six, and pip, which vendors several of them: copies
   across projects), one git repository per (project, version), exported with ``export-git``.
2. Runs ``python -m pipeline run`` on the export (redaction off, so that contents are the
   originals).
3. Ground truth: the exact Jaccard of every pair of distinct contents on the same shingles (word
   5-grams), computed with a sparse inverted index (documents x shingles, multiplied by its
   transpose: every intersection size at once).
4. Scores the pipeline's clusters and, as a reference, datasketch's in-memory ``MinHashLSH``
   (threshold 0.7, its default equal weights) over the same signatures, clusters by union-find.

Pair recall at J >= t: the share of true pairs whose two contents end in the same cluster.
Precision: the share of contents removed as near duplicates that have J >= 0.7 with at least one
other member of their cluster. Not a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tarfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import pyarrow.dataset as ds
from scipy import sparse

from stages.dedup import DedupConfig, shingle_hashes, signatures

PROJECTS = {
    "requests": ["2.25.1", "2.26.0", "2.27.1", "2.28.2", "2.31.0", "2.32.3"],
    "attrs": ["21.4.0", "22.2.0", "23.1.0", "23.2.0", "24.2.0"],
    "packaging": ["21.3", "22.0", "23.0", "23.2", "24.1"],
    "click": ["8.0.4", "8.1.3", "8.1.7"],
    "idna": ["3.3", "3.4", "3.7"],
    "six": ["1.15.0", "1.16.0"],
    "pip": ["22.3", "23.3"],
}
SUFFIXES = (".py", ".rst", ".md", ".txt", ".cfg", ".toml")


def fetch_sdists(cache: Path) -> list[tuple[str, str, Path]]:
    cache.mkdir(parents=True, exist_ok=True)
    out = []
    for project, versions in PROJECTS.items():
        for version in versions:
            found = [p for p in cache.glob("*") if p.name.lower().startswith(f"{project}-{version}.tar")]
            if not found:
                subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
                                "-d", str(cache), f"{project}=={version}"], check=True)
                found = [p for p in cache.glob("*") if p.name.lower().startswith(f"{project}-{version}.tar")]
            out.append((project, version, found[0]))
    return out


def make_repos(sdists: list[tuple[str, str, Path]], work: Path) -> list[Path]:
    env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@example.org", "GIT_COMMITTER_NAME": "b",
           "GIT_COMMITTER_EMAIL": "b@example.org"}
    repos = []
    for project, version, archive in sdists:
        repo = work / "repos" / f"{project}-{version}"
        if not (repo / ".git").is_dir():
            repo.mkdir(parents=True, exist_ok=True)
            with tarfile.open(archive) as tar:
                for member in tar.getmembers():
                    if member.isfile() and member.name.endswith(SUFFIXES):
                        target = repo / member.name.split("/", 1)[-1]
                        target.parent.mkdir(parents=True, exist_ok=True)
                        target.write_bytes(tar.extractfile(member).read())
            subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
            subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True, env=env)
            date = {"GIT_AUTHOR_DATE": "2024-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2024-01-01T00:00:00Z"}
            subprocess.run(["git", "-C", str(repo), "commit", "-q", "-m", version], check=True, env={**env, **date})
        repos.append(repo)
    return repos


def true_pairs(texts: list[str], ngram: int) -> dict[tuple[int, int], float]:
    """Every pair of documents with Jaccard >= 0.5 on their shingle sets, exactly."""
    sets = [shingle_hashes(t, ngram) for t in texts]
    vocab: dict[int, int] = {}
    rows, cols = [], []
    for i, s in enumerate(sets):
        for h in s.tolist():
            cols.append(vocab.setdefault(h, len(vocab)))
            rows.append(i)
    matrix = sparse.csr_matrix((np.ones(len(rows), dtype=np.int32), (rows, cols)), shape=(len(sets), len(vocab)))
    inter = (matrix @ matrix.T).tocoo()
    sizes = np.array([len(s) for s in sets])
    pairs = {}
    for i, j, n in zip(inter.row, inter.col, inter.data, strict=True):
        if i < j:
            jaccard = n / (sizes[i] + sizes[j] - n)
            if jaccard >= 0.5:
                pairs[(int(i), int(j))] = float(jaccard)
    return pairs


def union_find(n: int, edges: list[tuple[int, int]]) -> list[int]:
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in edges:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return [find(i) for i in range(n)]


def score(cluster: list[int], removed: set[int], pairs: dict[tuple[int, int], float]) -> dict[str, float]:
    def recall(t: float) -> float:
        wanted = [p for p, j in pairs.items() if j >= t]
        return sum(cluster[a] == cluster[b] for a, b in wanted) / len(wanted) if wanted else 1.0

    partners = defaultdict(set)
    for (a, b), j in pairs.items():
        if j >= 0.7 and cluster[a] == cluster[b]:
            partners[a].add(b)
            partners[b].add(a)
    precision = sum(1 for d in removed if partners[d]) / len(removed) if removed else 1.0
    return {"recall_0.7": recall(0.7), "recall_0.8": recall(0.8), "precision": precision, "removed": len(removed)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench-dedup"))
    args = parser.parse_args()
    work = args.work
    repos = make_repos(fetch_sdists(work / "sdists"), work)
    export = work / "export"
    if not (export / "orc").is_dir():
        from pipeline.export_git import export_repositories

        export_repositories(repos, export, origin_urls=[f"https://pypi.org/project/{r.name}" for r in repos])
    config = work / "config.toml"
    config.write_text("[redact]\nenabled = false\n")
    output = work / "out"
    subprocess.run(["rm", "-rf", str(output)], check=True)
    subprocess.run([sys.executable, "-m", "pipeline", "run", "--version", "q", "--input", str(export), "--output",
                    str(output), "--config", str(config), "--workers", "2"], check=True, stderr=subprocess.DEVNULL)
    version = output / "vq"
    data = ds.dataset(version / "data", format="parquet").to_table(columns=["blob_id", "near_dup_cluster", "content"])
    ledger = ds.dataset(version / "dropped", format="parquet").to_table().to_pylist()
    near = [r for r in ledger if r["reason"] == "near_duplicate"]
    store = export / "content_store" / "content"
    texts = data["content"].to_pylist() + [gzip.decompress((store / r["blob_id"]).read_bytes()).decode() for r in near]
    blobs = data["blob_id"].to_pylist() + [r["blob_id"] for r in near]
    survivor_of = dict(zip(data["blob_id"].to_pylist(), data["near_dup_cluster"].to_pylist(), strict=True))
    survivor_of.update({r["blob_id"]: r["detail"] for r in near})
    index = {b: i for i, b in enumerate(blobs)}
    cfg = DedupConfig()
    pairs = true_pairs(texts, cfg.ngram)
    ours = score([index[survivor_of[b]] for b in blobs], {index[r["blob_id"]] for r in near}, pairs)

    from datasketch import MinHash, MinHashLSH

    sigs, counts = signatures(texts, cfg)
    lsh = MinHashLSH(threshold=cfg.threshold, num_perm=cfg.num_perm)
    sketches = {}
    for i, (sig, count) in enumerate(zip(sigs, counts, strict=True)):
        if count:
            sketches[i] = MinHash(num_perm=cfg.num_perm, hashvalues=sig, scheme="affine32")
            lsh.insert(i, sketches[i])
    edges = [(i, j) for i, m in sketches.items() for j in lsh.query(m) if i < j]
    reference_cluster = union_find(len(texts), edges)
    reference_removed = {i for i in range(len(texts)) if reference_cluster[i] != i}
    theirs = score(reference_cluster, reference_removed, pairs)
    true7 = sum(1 for j in pairs.values() if j >= 0.7)
    true8 = sum(1 for j in pairs.values() if j >= 0.8)
    print(f"{len(repos)} repositories ({', '.join(PROJECTS)}), {len(texts)} distinct contents, "
          f"{true7} true pairs at J >= 0.7, {true8} at J >= 0.8\n")
    print("| method | removed as near duplicate | precision | pair recall J >= 0.7 | pair recall J >= 0.8 |")
    print("|---|---|---|---|---|")
    b, r = cfg.bands, cfg.rows
    for name, s in ((f"pipeline ({b} bands x {r} rows, verified)", ours),
                    ("datasketch MinHashLSH (25 x 10, unverified)", theirs)):
        print(f"| {name} | {s['removed']} | {s['precision']:.3f} | {s['recall_0.7']:.3f} | {s['recall_0.8']:.3f} |")
    print("\n" + json.dumps({"ours": ours, "datasketch": theirs}))


if __name__ == "__main__":
    main()
