"""Exact and near dedup through the whole graph, on exports of repositories made here."""

import inspect
import json
import os
import subprocess
from pathlib import Path

import pyarrow.dataset as ds
import pytest

from manifests.manifest import read_manifest, verify
from pipeline.cli import main

REAL = inspect.getsource(json.decoder)  # real code nobody here wrote


def commit(repo: Path, files: dict[str, str], date: str) -> None:
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.org", "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True, env=env)
    subprocess.run(["git", "-C", str(repo), "commit", "-q", "-m", "c"], check=True, env=env)


def near_copy(text: str, changes: int) -> str:
    lines = text.splitlines()
    for i in range(changes):
        lines[10 + 7 * i] = f"# edited line {i}"
    return "\n".join(lines)


#: Dedup on its own: every language kept, no quality filter (empty and repeated-token files, vendored
#: copies and text files must reach dedup here).
DEDUP_ONLY = """
[language]
keep_unknown = true
exclude_types = []
[filters]
too_many_lines = false
long_lines = false
low_alphabetic = false
encoded_data = false
auto_generated = false
vendored = "keep"
"""


def build(export: Path, output: Path, version: str, workers: int, config: Path | None = None) -> Path:
    if config is None:
        config = output.parent / f"{output.name}.toml"
        config.write_text(DEDUP_ONLY)
    args = ["run", "--version", version, "--input", str(export), "--output", str(output), "--workers", str(workers)]
    assert main(args + ["--config", str(config)]) == 0
    return output / f"v{version}"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("dedup")
    identical = "the same generated file, copied many times over\n" * 3
    commit(root / "alpha", {
        "lib/util.py": REAL, "empty.py": "", "repeat.txt": "spam " * 1000,
        **{f"copies/c{i:04d}.txt": identical for i in range(2000)},
    }, "2024-01-01T00:00:00Z")
    commit(root / "beta", {  # committed later: its copies survive (later revision date first)
        "vendor/util.py": REAL, "near.py": near_copy(REAL, 3), "empty2.py": "", "other.py": "x = 1\n" * 3,
    }, "2024-06-01T00:00:00Z")
    export = root / "export"
    assert main(["export-git", str(root / "alpha"), str(root / "beta"), "--out", str(export),
                 "--origin-url", "https://github.com/o/alpha", "--origin-url", "https://github.com/o/beta"]) == 0
    return export


@pytest.fixture(scope="module")
def built(corpus: Path) -> Path:
    return build(corpus, corpus.parent / "out-1", "1", workers=1)


def test_exact_and_near_duplicates_are_removed_with_their_survivor(built: Path) -> None:
    data = ds.dataset(built / "data", format="parquet").to_table()
    ledger = ds.dataset(built / "dropped", format="parquet").to_table()
    kept = {(r["origin_url"].rsplit("/", 1)[1], r["path"]) for r in data.to_pylist()}
    blob = {(r["origin_url"].rsplit("/", 1)[1], r["path"]): r["blob_id"] for r in data.to_pylist()}
    drops = {(r["origin_url"].rsplit("/", 1)[1], r["path"]): r for r in ledger.to_pylist()}
    # identical util.py in both: the later revision (beta's) survives the exact dedup
    util_blob = drops[("alpha", "/lib/util.py")]["detail"]
    assert drops[("alpha", "/lib/util.py")]["reason"] == "exact_duplicate"
    # beta's util.py and its edited copy near.py: same dates (same repository), so the smaller blob_id
    # survives, and the other names it
    survivor, loser = sorted(["/vendor/util.py", "/near.py"], key=lambda p: drops.get(("beta", p), {}).get(
        "blob_id") or blob[("beta", p)])
    assert ("beta", survivor) in kept and ("beta", loser) in drops
    assert drops[("beta", loser)]["reason"] == "near_duplicate"
    assert drops[("beta", loser)]["detail"] == blob[("beta", survivor)]
    assert util_blob in {blob[("beta", survivor)], drops[("beta", loser)]["blob_id"]}
    # 2,000 identical files: one survives
    copies = [k for k in kept if k[1].startswith("/copies/")]
    assert len(copies) == 1
    assert sum(1 for k, r in drops.items() if k[1].startswith("/copies/") and r["reason"] == "exact_duplicate") == 1999
    # empty files are exact duplicates of each other; files too short for shingles stay
    assert ("beta", "/empty2.py") in kept and drops[("alpha", "/empty.py")]["reason"] == "exact_duplicate"
    assert ("beta", "/other.py") in kept and ("alpha", "/repeat.txt") in kept
    manifest = read_manifest(built)
    assert manifest["totals"]["files_in"] == data.num_rows + ledger.num_rows
    near = next(s for s in manifest["stages"] if s["name"] == "near_dedup")
    assert near["dropped"] == {"near_duplicate": 1} and near["counters"]["clusters"] >= 1
    assert data["near_dup_cluster"].to_pylist() == data["blob_id"].to_pylist()
    assert verify(built) == []


@pytest.mark.parametrize("workers", [2, 4])
def test_same_survivors_and_bytes_with_any_number_of_workers(corpus: Path, built: Path, workers: int) -> None:
    other = build(corpus, corpus.parent / f"out-{workers}", "1", workers=workers)
    shards = {s["path"]: s["sha256"] for s in read_manifest(other)["shards"]}
    assert shards == {s["path"]: s["sha256"] for s in read_manifest(built)["shards"]}


def test_keep_near_duplicates_flags_them_instead(corpus: Path, built: Path) -> None:
    config = corpus.parent / "keep.toml"
    config.write_text(DEDUP_ONLY + "[dedup]\nkeep_near_duplicates = true\n")
    version = build(corpus, corpus.parent / "out-keep", "1", workers=1, config=config)
    rows = {r["path"]: r for r in ds.dataset(version / "data", format="parquet").to_table().to_pylist()}
    survivor = min(rows["/near.py"]["blob_id"], rows["/vendor/util.py"]["blob_id"])
    assert rows["/near.py"]["near_dup_cluster"] == rows["/vendor/util.py"]["near_dup_cluster"] == survivor


def test_one_giant_cluster_of_10000_near_copies(tmp_path: Path) -> None:
    base = REAL[:3000]
    commit(tmp_path / "giant", {f"f{i:05d}.py": f"{base}\n# variant {i} {i * 7919}\n" for i in range(10_000)},
           "2024-01-01T00:00:00Z")
    export = tmp_path / "export"
    assert main(["export-git", str(tmp_path / "giant"), "--out", str(export)]) == 0
    config = tmp_path / "small-partitions.toml"  # ~10 edge partitions: the rounds shuffle for real
    config.write_text(DEDUP_ONLY + "[execution]\ncomponents_partition_edges = 2000\n")
    version = build(export, tmp_path / "out", "1", workers=2, config=config)
    data = ds.dataset(version / "data", format="parquet").to_table()
    assert data.num_rows == 1
    near = next(s for s in read_manifest(version)["stages"] if s["name"] == "near_dedup")
    assert near["dropped"] == {"near_duplicate": 9_999}
    assert near["counters"]["candidate_pairs"] < 40_000  # linear in the cluster, not 50 million


def test_a_20_mb_file(tmp_path: Path) -> None:
    line = "def handler(event, context): return process(event['records'], context.deadline)\n"
    big = "".join(f"{line[:-1]}  # {i}\n" for i in range(20 * 1024 * 1024 // (len(line) + 10)))
    commit(tmp_path / "big", {"big.py": big, "copy.py": big + "\n# one more line\n"}, "2024-01-01T00:00:00Z")
    export = tmp_path / "export"
    assert main(["export-git", str(tmp_path / "big"), "--out", str(export)]) == 0
    config = tmp_path / "c.toml"
    config.write_text(DEDUP_ONLY + "[fetch]\nmax_file_bytes = 33554432\n")
    version = build(export, tmp_path / "out", "1", workers=1, config=config)
    ledger = ds.dataset(version / "dropped", format="parquet").to_table().to_pylist()
    data = ds.dataset(version / "data", format="parquet").to_table()
    assert [r["reason"] for r in ledger] == ["near_duplicate"]
    assert {ledger[0]["path"], *data["path"].to_pylist()} == {"/big.py", "/copy.py"}
    assert data["length_bytes"][0].as_py() > 20_000_000


def test_exact_jaccard_verification_gives_the_same_decisions_here(corpus: Path, built: Path) -> None:
    config = corpus.parent / "exact.toml"
    config.write_text(DEDUP_ONLY + "[dedup]\nexact_jaccard = true\n")
    version = build(corpus, corpus.parent / "out-exact", "1", workers=2, config=config)
    ledger = ds.dataset(version / "dropped", format="parquet").to_table()
    reference = ds.dataset(built / "dropped", format="parquet").to_table()
    assert sorted(ledger["path"].to_pylist()) == sorted(reference["path"].to_pylist())
    assert read_manifest(version)["config"]["dedup"]["exact_jaccard"] is True
