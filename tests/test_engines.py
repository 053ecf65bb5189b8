"""The two engines of a build give the same dataset: ``pipeline.local_build`` (in-process runs, no
Dask) and ``pipeline.graph`` (Dask). Their walks give the same rows and counts on genuine and
generated exports; their builds give byte-identical shards and ledgers."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pyarrow as pa
import pytest

from manifests.manifest import read_manifest
from pipeline.cli import main
from pipeline.config import Config
from pipeline.graph.cluster import dask_client
from pipeline.graph.export_walk import Walk
from pipeline.local_build import BuildCorpus, LocalWalk
from pipeline.orc import Export
from pipeline.partition import ROW_ORDER
from tests.conftest import GRAPH_EXAMPLE, SAMPLE_EXPORT

DASK = "[execution]\nlocal_engine_below_mb = 0\n"  # in-process runs on one Dask worker, as before


def _walks(export: Path, config: Config | None = None) -> tuple[tuple[pa.Table, object], tuple[pa.Table, object]]:
    config = config or Config()
    local = LocalWalk(Export(str(export)), config, lambda m: None)
    local_rows = local.files().sort_by(ROW_ORDER)
    with dask_client(1, None, threads=2, in_process=True):
        on_dask = Walk(Export(str(export)), config, lambda m: None)
        frame = on_dask.files().compute()
    dask_rows = pa.Table.from_pandas(frame, preserve_index=False).cast(local_rows.schema).sort_by(ROW_ORDER)
    return (local_rows, local.report), (dask_rows, on_dask.report)


@pytest.mark.parametrize("export", [SAMPLE_EXPORT, GRAPH_EXAMPLE], ids=["sample", "swh-graph-example"])
def test_the_walk_is_the_same_on_both_engines(export: Path) -> None:
    (local_rows, local_report), (dask_rows, dask_report) = _walks(export)
    assert local_rows.num_rows > 0
    assert local_rows.equals(dask_rows)
    assert local_report == dask_report


def test_the_walk_counts_problems_the_same_on_both_engines(tmp_path: Path) -> None:
    """An export with a branch to a release, origins that cannot be walked, and a directory missing:
    the genuine export with its ``directory`` table cut by one subdirectory."""
    import pyarrow.compute as pc
    import pyarrow.orc as orc

    export = tmp_path / "export"
    shutil.copytree(GRAPH_EXAMPLE, export)
    entries = pa.concat_tables(orc.read_table(p) for p in sorted((export / "orc" / "directory_entry").glob("*.orc")))
    subdir = sorted(pc.filter(entries["target"], pc.equal(entries["type"], "dir")).to_pylist())[0]
    for path in sorted((export / "orc" / "directory").glob("*.orc")):
        table = orc.read_table(path)
        kept = table.filter(pc.invert(pc.equal(table["id"], subdir)))
        if kept.num_rows != table.num_rows:
            path.unlink()
            orc.write_table(kept, path)
    (local_rows, local_report), (dask_rows, dask_report) = _walks(export)
    assert local_report.directories_missing >= 1
    assert local_rows.equals(dask_rows)
    assert local_report == dask_report


def _digests(version: Path) -> dict[str, str]:
    return {str(p.relative_to(version)): hashlib.sha256(p.read_bytes()).hexdigest()
            for folder in ("data", "dropped") for p in sorted((version / folder).rglob("*.parquet"))}


def _build(export: Path, output: Path, config: str, capsys: pytest.CaptureFixture) -> tuple[Path, str]:
    (output.parent / f"{output.name}.toml").write_text(config)
    assert main(["run", "--version", "1", "--input", str(export), "--output", str(output), "--workers", "1",
                 "--threads", "2", "--config", str(output.parent / f"{output.name}.toml")]) == 0
    return output / "v1", capsys.readouterr().err


def test_builds_on_both_engines_are_byte_identical(stdlib_export: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture) -> None:
    """Real code in ~8 partitions, two threads: every shard and ledger file has the same bytes."""
    partitions = (stdlib_export.parent / "config.toml").read_text()
    local, local_log = _build(stdlib_export, tmp_path / "local", partitions, capsys)
    on_dask, dask_log = _build(stdlib_export, tmp_path / "dask", partitions + DASK, capsys)
    assert "engine: this process, no Dask, 2 thread(s)" in local_log
    assert "dask: one worker in this process, 2 thread(s)" in dask_log
    digests = _digests(local)
    assert len([p for p in digests if p.startswith("data/")]) >= 5  # several partitions
    assert digests == _digests(on_dask)
    ours, theirs = read_manifest(local), read_manifest(on_dask)
    assert ours["walk"] == theirs["walk"] and ours["totals"] == theirs["totals"]
    assert ours["shards"] == theirs["shards"]
    for a, b in zip(ours["stages"], theirs["stages"], strict=True):
        a["counters"].pop("label_iterations", None)  # union-find takes one round; Dask's propagation, more
        b["counters"].pop("label_iterations", None)
        assert a == b


def test_the_sample_builds_without_dask(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """The README's run (no --workers: the size decides) takes the local engine, and never imports Dask."""
    import subprocess
    import sys

    code = ("import sys; from pipeline.cli import main; "
            f"rc = main(['run', '--version', '1', '--input', {str(SAMPLE_EXPORT)!r}, '--output', "
            f"{str(tmp_path / 'out')!r}]); "
            "print('dask imported' if 'dask' in sys.modules else 'no dask'); sys.exit(rc)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "engine: this process, no Dask" in done.stderr
    assert done.stdout.strip().splitlines()[-1] == "no dask"


def test_a_reduce_without_dask_counts_its_steps() -> None:
    """Each step of a reduce on the engine without Dask moves its progress bar, as on Dask."""
    ticks: list[int] = []
    corpus = BuildCorpus(pa.table({"k": [2, 1, 2]}), None, "/nowhere", tick=lambda: ticks.append(1))
    schema = pa.schema([pa.field("k", pa.int64())])
    grouped = corpus.group("k", lambda table, _: table, schema)
    assert grouped.table["k"].to_pylist() == [1, 2, 2]
    assert len(ticks) == 2  # the sort, then the map
    grouped.map(lambda table, _: table, schema)
    assert len(ticks) == 3
