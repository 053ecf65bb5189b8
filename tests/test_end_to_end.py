"""The whole graph on real exports: manifest, ledger, verify, determinism, bad input."""

import gzip
import hashlib
import json
from pathlib import Path

import duckdb
import pyarrow.dataset as ds
import pytest

from manifests.manifest import read_manifest, verify
from pipeline.cli import main
from tests.conftest import GRAPH_EXAMPLE, SAMPLE_EXPORT, copy_version


def _shards(version: Path) -> dict[str, str]:
    return {s["path"]: s["sha256"] for s in read_manifest(version)["shards"]}


def test_sample_export_end_to_end(built_sample: Path) -> None:
    version = built_sample / "v2.1"
    manifest = read_manifest(version)
    totals = manifest["totals"]
    # every file the walk found is either kept or in the ledger
    data = ds.dataset(version / "data", format="parquet").to_table()
    ledger = ds.dataset(version / "dropped", format="parquet").to_table()
    assert manifest["walk"]["files"] == totals["files_in"] == data.num_rows + ledger.num_rows
    assert (data.num_rows, ledger.num_rows) == (totals["files_kept"], totals["files_dropped"])
    # the-stack-v2 HEAD → refs/heads/main; the sample repo's HEAD → refs/heads/master (its three
    # files, foo, bar and baz, hold a few words that no detector calls a language: in the ledger)
    branches = dict(zip(data["origin_url"].to_pylist(), data["branch_name"].to_pylist(), strict=True))
    assert branches == {"https://github.com/bigcode-project/the-stack-v2": "refs/heads/main"}
    sample_repo = [r for r in ledger.to_pylist() if "git2graph" in r["origin_url"]]
    assert sorted((r["path"], r["reason"]) for r in sample_repo) == [
        ("/bar", "unknown_language"), ("/baz", "unknown_language"), ("/foo", "unknown_language")]
    # the one skipped_content row of the export is in the ledger with the archive's reason
    fetch_rows = [r for r in ledger.select(["path", "stage", "reason", "detail"]).to_pylist() if r["stage"] == "fetch"]
    assert fetch_rows == [
        {"path": "/lhq/lhq.ipynb", "stage": "fetch", "reason": "skipped_content", "detail": "Content too large"}
    ]
    assert manifest["stages"][0] == {
        "name": "fetch", "in": totals["files_in"], "kept": totals["files_in"] - 1,
        "dropped": {"skipped_content": 1}, "counters": manifest["stages"][0]["counters"],
    }
    # every stage's kept rows are the next stage's input; the ledger has every stage's drops
    stages = manifest["stages"]
    assert [s["name"] for s in stages] == ["fetch", "decode", "language", "license", "filters", "decontaminate",
                                           "redact", "repo_metadata", "exact_dedup", "near_dedup"]
    for before, after in zip(stages, stages[1:], strict=False):
        assert before["kept"] == after["in"]
        assert before["in"] - before["kept"] == sum(before["dropped"].values())
    assert stages[-1]["kept"] == totals["files_kept"]
    # the ir/Compile_*.py scripts of the-stack-v2 are near-copies of each other: one survives
    compile_scripts = [p for p in data["path"].to_pylist() if p.startswith("/ir/Compile_")]
    dropped_scripts = [r for r in ledger.to_pylist() if r["path"].startswith("/ir/Compile_")]
    assert len(compile_scripts) >= 1 and dropped_scripts
    survivors = set(data["blob_id"].to_pylist())
    assert all(r["reason"] == "near_duplicate" and r["detail"] in survivors for r in dropped_scripts)
    assert data["near_dup_cluster"].to_pylist() == data["blob_id"].to_pylist()
    # content is the blob's text: its sha1 is the blob id and its sha256 the recorded one
    # (files where redaction replaced something differ from their blob, as they must)
    for row in data.select(["blob_id", "sha256", "content", "src_encoding", "pii"]).to_pylist():
        raw = row["content"].encode()
        assert row["src_encoding"] == "UTF-8"
        assert (hashlib.sha1(raw).hexdigest() == row["blob_id"]) == (row["pii"] == [])
        assert hashlib.sha256(raw).hexdigest() == row["sha256"]
    stored = gzip.decompress((SAMPLE_EXPORT / "content_store" / "content" / data["blob_id"][0].as_py()).read_bytes())
    assert stored.decode() == data["content"][0].as_py()
    languages = dict(zip(data["path"].to_pylist(), data["language"].to_pylist(), strict=True))
    assert languages["/the_stack/1_directory_traversal/find_file_paths.py"] == "Python"
    assert languages["/spark/spark_env.sh"] == "Shell" and languages["/kaggle/requirements.txt"] == "Pip Requirements"
    assert sum(v["files"] for v in manifest["languages"].values()) == data.num_rows
    assert sum(v["bytes"] for v in manifest["languages"].values()) == totals["content_bytes"]
    # documentation is kept by default, as in The Stack v2
    assert languages["/README.md"] == "Markdown" and languages["/LICENSE"] == "Text"
    assert {r["path"]: r["reason"] for r in ledger.to_pylist()}["/.gitignore"] == "vendored"
    # the repository's LICENSE (Apache-2.0, recognised exactly: ScanCode's index is not even loaded)
    # applies to every file below its root
    assert set(map(tuple, data["detected_licenses"].to_pylist())) == {("Apache-2.0",)}
    assert set(data["license_type"].to_pylist()) == {"permissive"}
    counters = next(s for s in stages if s["name"] == "license")["counters"]
    assert (counters["license_files"], counters["exact_matches"], counters["scancode_index_loads"]) == (1, 1, 0)
    assert manifest["licenses"] == {"Apache-2.0": {"files": data.num_rows, "bytes": totals["content_bytes"]}}
    assert sum(len(r.encode()) for r in data["content"].to_pylist()) == totals["content_bytes"]
    assert (version / "README.md").read_text().count(str(totals["files_kept"])) >= 1


def test_shards_load_in_duckdb_without_custom_code(built_sample: Path) -> None:
    pattern = str(built_sample / "v2.1" / "data" / "*" / "*.parquet")
    query = f"SELECT count(*), count(DISTINCT repo_name) FROM read_parquet('{pattern}')"
    count, repos = duckdb.sql(query).fetchall()[0]
    assert (count, repos) == (read_manifest(built_sample / "v2.1")["totals"]["files_kept"], 1)


def test_shards_load_with_datasets_without_custom_code(
    built_sample: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "cache"))
    from datasets import load_dataset

    files = str(built_sample / "v2.1" / "data" / "*" / "*.parquet")
    dataset = load_dataset("parquet", data_files=files, split="train", cache_dir=str(tmp_path / "cache"))
    assert dataset.num_rows == read_manifest(built_sample / "v2.1")["totals"]["files_kept"]
    assert set(dataset.column_names) >= {"blob_id", "content", "path", "repo_name", "visit_date"}


def test_two_workers_and_reruns_give_byte_identical_shards(built_sample: Path, tmp_path: Path, capsys) -> None:
    output = tmp_path / "dataset"
    assert main(["run", "--version", "2.1", "--output", str(output), "--workers", "2"]) == 0
    assert _shards(output / "v2.1") == _shards(built_sample / "v2.1")
    for path in _shards(output / "v2.1"):
        assert (output / "v2.1" / path).read_bytes() == (built_sample / "v2.1" / path).read_bytes()
    # the same version again: nothing rebuilt
    before = (output / "v2.1" / "manifest.json").read_bytes()
    capsys.readouterr()
    assert main(["run", "--version", "2.1", "--output", str(output), "--workers", "1"]) == 0
    assert "up to date" in capsys.readouterr().err
    assert (output / "v2.1" / "manifest.json").read_bytes() == before


def test_same_version_with_another_config_or_input_is_refused(built_sample: Path, tmp_path: Path, capsys) -> None:
    output = copy_version(built_sample, tmp_path)
    config = tmp_path / "c.toml"
    config.write_text("[fetch]\nmax_file_bytes = 1000\n")
    assert main(["run", "--version", "2.1", "--output", str(output), "--config", str(config)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "already exists with a different config" in err
    store = tmp_path / "store"
    store.mkdir()
    args = ["run", "--version", "2.1", "--output", str(output), "--input", str(GRAPH_EXAMPLE),
            "--content-store", str(store)]
    assert main(args) == 2
    assert "already exists with a different input" in capsys.readouterr().err
    assert verify(output / "v2.1") == []


def test_graph_example_missing_contents_are_ledgered(tmp_path: Path) -> None:
    """The official swh-graph example: no HEAD (master is walked), no blobs in the store."""
    store = tmp_path / "store"
    (store / "content").mkdir(parents=True)
    output = tmp_path / "dataset"
    args = ["run", "--version", "1.0", "--input", str(GRAPH_EXAMPLE), "--content-store", str(store),
            "--output", str(output), "--workers", "1"]
    assert main(args) == 0
    manifest = read_manifest(output / "v1.0")
    ledger = ds.dataset(output / "v1.0" / "dropped", format="parquet").to_table()
    assert manifest["walk"]["origins_walked"] == 2
    assert sorted(set(ledger["path"].to_pylist())) == ["/README.md", "/parser.c", "/tests/README.rst", "/tests/main.py"]
    assert set(ledger["reason"].to_pylist()) == {"content_missing"}
    assert manifest["totals"]["files_kept"] == 0 and manifest["totals"]["files_dropped"] == 8
    assert verify(output / "v1.0") == []


def test_damaged_blobs_become_ledger_rows_and_the_run_goes_on(sample_export: Path, tmp_path: Path) -> None:
    content = sample_export / "content_store" / "content"
    blobs = sorted(content.iterdir())
    blobs[0].unlink()  # missing
    blobs[1].write_bytes(blobs[1].read_bytes()[:-8])  # truncated gzip
    blobs[2].write_bytes(gzip.compress(b"something else entirely"))  # wrong bytes
    output = tmp_path / "dataset"
    args = ["run", "--version", "3", "--input", str(sample_export), "--output", str(output), "--workers", "1"]
    assert main(args) == 0
    ledger = ds.dataset(output / "v3" / "dropped", format="parquet").to_table()
    reasons = {b: r for b, r in zip(ledger["blob_id"].to_pylist(), ledger["reason"].to_pylist(), strict=True)}
    assert reasons[blobs[0].name] == "content_missing"
    assert reasons[blobs[1].name] == "content_corrupt"
    assert reasons[blobs[2].name] == "content_corrupt"
    manifest = read_manifest(output / "v3")
    assert manifest["totals"]["files_in"] == manifest["totals"]["files_kept"] + manifest["totals"]["files_dropped"]


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("no_orc", "not a Software Heritage export (no orc/ folder)"),
        ("no_table", "orc/snapshot_branch: table missing from the export"),
        ("bad_orc", "not a readable ORC file"),
        ("no_store", "content store does not exist"),
    ],
)
def test_bad_input_fails_with_one_line_and_no_version(
    sample_export: Path, tmp_path: Path, capsys, damage: str, message: str
) -> None:
    import shutil

    if damage == "no_orc":
        shutil.rmtree(sample_export / "orc")
    elif damage == "no_table":
        shutil.rmtree(sample_export / "orc" / "snapshot_branch")
    elif damage == "bad_orc":
        next((sample_export / "orc" / "revision").iterdir()).write_bytes(b"\x00" * 64)
    else:
        shutil.rmtree(sample_export / "content_store")
    output = tmp_path / "dataset"
    assert main(["run", "--version", "1", "--input", str(sample_export), "--output", str(output)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and err.count("\n") == 0 and message in err
    assert not (output / "v1" / "manifest.json").exists()


def test_unwritable_output_folder(tmp_path: Path, capsys) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder should be")
    assert main(["run", "--version", "1", "--output", str(blocker / "dataset")]) == 2
    err = capsys.readouterr().err
    assert "cannot write the output folder" in err and err.strip().count("\n") == 0


def test_manifest_records_identity(built_sample: Path) -> None:
    manifest = read_manifest(built_sample / "v2.1")
    assert len(manifest["input"]["fingerprint"]["sha256"]) == 64
    assert {"pipeline", "python", "pyarrow", "dask"} <= set(manifest["software"])
    assert manifest["config"]["fetch"]["max_file_bytes"] == 10 * 1024 * 1024
    assert json.dumps(manifest)  # plain JSON


def test_existing_cluster_via_scheduler_gives_the_same_shards(built_sample: Path, tmp_path: Path) -> None:
    from dask.distributed import LocalCluster

    output = tmp_path / "dataset"
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        assert main(["run", "--version", "2.1", "--output", str(output), "--scheduler", cluster.scheduler_address]) == 0
    assert _shards(output / "v2.1") == _shards(built_sample / "v2.1")


def test_tables_split_over_many_orc_files_give_the_same_shards(
    built_sample: Path, sample_export: Path, tmp_path: Path
) -> None:
    import pyarrow.orc as orc

    for table in ("directory_entry", "content", "revision", "snapshot_branch"):
        folder = sample_export / "orc" / table
        (original,) = folder.iterdir()
        rows = orc.read_table(original)
        original.unlink()
        step = max(1, rows.num_rows // 3)
        for i, start in enumerate(range(0, rows.num_rows, step)):
            orc.write_table(rows.slice(start, step), folder / f"{table}-part{i}.orc", compression="zstd")
    output = tmp_path / "dataset"
    args = ["run", "--version", "2.1", "--input", str(sample_export), "--output", str(output), "--workers", "2"]
    assert main(args) == 0
    assert _shards(output / "v2.1") == _shards(built_sample / "v2.1")
    assert read_manifest(output / "v2.1")["input"]["fingerprint"]["files"] > 9


def test_small_partitions_and_batches_keep_every_row(built_sample: Path, tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[output]\npartition_bytes = 65536\nbatch_bytes = 4096\nrow_group_bytes = 8192\n")
    output = tmp_path / "dataset"
    assert main(["run", "--version", "9", "--output", str(output), "--config", str(config), "--workers", "2"]) == 0
    manifest = read_manifest(output / "v9")
    assert manifest["walk"]["partitions"] > 1
    order = [("origin_url", "ascending"), ("path", "ascending")]
    small = ds.dataset(output / "v9" / "data", format="parquet").to_table().sort_by(order)
    reference = ds.dataset(built_sample / "v2.1" / "data", format="parquet").to_table().sort_by(order)
    assert small.equals(reference)
    assert verify(output / "v9") == []


def test_origins_without_a_full_visit_are_counted(sample_export: Path, tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.orc as orc

    for table, extra in (
        ("origin", {"id": ["f" * 40], "url": ["https://github.com/never/finished"]}),
        ("origin_visit_status", {"origin": ["https://github.com/never/finished"], "visit": [1],
                                 "status": ["partial"], "snapshot": [None], "type": ["git"]}),
    ):
        (path,) = (sample_export / "orc" / table).iterdir()
        rows = orc.read_table(path)
        if "date" in rows.column_names:
            extra["date"] = rows["date"].to_pylist()[:1]
        orc.write_table(pa.concat_tables([rows, pa.table(extra, schema=rows.schema)]), path)
    output = tmp_path / "dataset"
    args = ["run", "--version", "1", "--input", str(sample_export), "--output", str(output), "--workers", "1"]
    assert main(args) == 0
    walk = read_manifest(output / "v1")["walk"]
    assert (walk["origins"], walk["origins_walked"], walk["origin_problems"]["no_full_visit"]) == (3, 2, 1)


def test_redaction_can_be_switched_off_and_the_card_says_so(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[redact]\nenabled = false\n")
    output = tmp_path / "dataset"
    assert main(["run", "--version", "1", "--output", str(output), "--config", str(config), "--workers", "1"]) == 0
    manifest = read_manifest(output / "v1")
    assert [s["name"] for s in manifest["stages"]] == ["fetch", "decode", "language", "license", "filters",
                                                       "decontaminate", "repo_metadata", "exact_dedup", "near_dedup"]
    assert "pii" not in ds.dataset(output / "v1" / "data", format="parquet").schema.names
    assert "Not redacted" in (output / "v1" / "README.md").read_text()


def test_a_small_export_runs_in_this_process_and_gives_the_shards_of_worker_processes(
        built_sample: Path, tmp_path: Path, capsys) -> None:
    output = tmp_path / "dataset"
    assert main(["run", "--version", "2.1", "--output", str(output)]) == 0  # no --workers: the size decides
    assert "engine: this process, no Dask, 1 thread(s) (a small export" in capsys.readouterr().err
    assert _shards(output / "v2.1") == _shards(built_sample / "v2.1")
    config = tmp_path / "c.toml"
    config.write_text("[execution]\nin_process_below_mb = 0\n")  # not hashed: the same version's identity
    other = tmp_path / "processes"
    assert main(["run", "--version", "2.1", "--output", str(other), "--config", str(config)]) == 0
    err = capsys.readouterr().err
    assert "in this process" not in err and "engine: this process" not in err
    assert _shards(other / "v2.1") == _shards(built_sample / "v2.1")
