"""Exports in the shapes real ones have, generated here: empty tables (empty folders), tables a
subset of the archive lacks, a directory the export does not have, symlinks and submodules."""

import inspect
import json
import os
import shutil
import subprocess
import textwrap
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.orc as orc
import pytest

from manifests.manifest import read_manifest
from pipeline.cli import main

ORIGIN = "https://github.com/shapes/repo"
ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org", "GIT_COMMITTER_NAME": "t",
       "GIT_COMMITTER_EMAIL": "t@example.org", "GIT_AUTHOR_DATE": "2024-01-01T00:00:00Z",
       "GIT_COMMITTER_DATE": "2024-01-01T00:00:00Z"}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
                           env={**os.environ, **ENV}).stdout


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One repository: real code at the root and in ``lib/deep/``, a symlink, and a submodule."""
    root = tmp_path_factory.mktemp("shapes")
    repo = root / "repo"
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    (repo / "lib" / "deep").mkdir(parents=True)
    (repo / "main.py").write_text(inspect.getsource(textwrap))
    (repo / "lib" / "util.py").write_text(inspect.getsource(json.decoder))
    (repo / "lib" / "deep" / "scan.py").write_text(inspect.getsource(json.scanner))
    os.symlink("lib/util.py", repo / "util_link.py")
    git(repo, "add", "-A")
    # a submodule: a gitlink entry (mode 160000) pointing at a commit of another repository
    git(repo, "update-index", "--add", "--cacheinfo", f"160000,{'a' * 40},vendor/sub")
    git(repo, "commit", "-q", "-m", "c")
    assert main(["export-git", str(repo), "--out", str(root / "export"), "--origin-url", ORIGIN]) == 0
    return root / "export"


def build(export: Path, output: Path) -> Path:
    assert main(["run", "--version", "1", "--input", str(export), "--output", str(output), "--workers", "1"]) == 0
    return output / "v1"


@pytest.fixture(scope="module")
def reference(export: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(export, tmp_path_factory.mktemp("ref"))


def ledger(version: Path) -> dict[str, tuple[str, str]]:
    rows = ds.dataset(version / "dropped", format="parquet").to_table().to_pylist()
    return {r["path"]: (r["stage"], r["reason"]) for r in rows}


def shards(version: Path) -> dict[str, str]:
    return {s["path"]: s["sha256"] for s in read_manifest(version)["shards"]}


def test_symlinks_are_ledger_rows_and_submodules_are_counted(reference: Path) -> None:
    manifest = read_manifest(reference)
    assert ledger(reference)["/util_link.py"] == ("fetch", "symlink")
    assert manifest["walk"]["submodules_skipped"] == 1
    kept = ds.dataset(reference / "data", format="parquet").to_table(columns=["path"])["path"].to_pylist()
    assert sorted(kept) == ["/lib/deep/scan.py", "/lib/util.py", "/main.py"]
    assert manifest["totals"]["files_in"] == 4 == manifest["totals"]["files_kept"] + manifest["totals"]["files_dropped"]


def test_empty_and_absent_tables(export: Path, reference: Path, tmp_path: Path) -> None:
    copy = tmp_path / "export"
    shutil.copytree(export, copy)
    # export-git, like Software Heritage's writer, leaves a table with no rows as an empty folder
    assert list((copy / "orc" / "skipped_content").iterdir()) == []
    assert list((copy / "orc" / "release").iterdir()) == []
    shutil.rmtree(copy / "orc" / "release")  # a table a subset of the archive may lack altogether
    assert shards(build(copy, tmp_path / "out")) == shards(reference)
    shutil.rmtree(copy / "orc" / "content")  # one the walk cannot do without
    assert main(["run", "--version", "2", "--input", str(copy), "--output", str(tmp_path / "out")]) == 2


def test_the_error_for_a_missing_required_table_is_one_line(export: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture) -> None:
    copy = tmp_path / "export"
    shutil.copytree(export, copy)
    shutil.rmtree(copy / "orc" / "directory_entry")
    assert main(["run", "--version", "1", "--input", str(copy), "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "directory_entry: table missing from the export" in err[0]


def _drop_rows(folder: Path, column: str, values: set[str]) -> None:
    (path,) = folder.glob("*.orc")
    table = orc.read_table(path)
    table = table.filter(pc.invert(pc.is_in(table[column], pa.array(sorted(values)))))
    path.unlink()
    orc.write_table(table, path, compression="zstd")


def _directory_of(export: Path, name: bytes) -> str:
    entries = orc.read_table(next((export / "orc" / "directory_entry").glob("*.orc"))).to_pylist()
    return next(e["target"] for e in entries if e["name"] == name and e["type"] == "dir")


def test_a_directory_missing_from_the_export_is_counted(export: Path, tmp_path: Path) -> None:
    copy = tmp_path / "export"
    shutil.copytree(export, copy)
    deep = _directory_of(copy, b"deep")
    _drop_rows(copy / "orc" / "directory", "id", {deep})
    _drop_rows(copy / "orc" / "directory_entry", "directory_id", {deep})
    version = build(copy, tmp_path / "out")
    manifest = read_manifest(version)
    assert manifest["walk"]["directories_missing"] == 1
    assert manifest["totals"]["files_in"] == 3  # lib/deep/scan.py is not reachable: counted, not lost silently
    assert manifest["totals"]["files_in"] == manifest["totals"]["files_kept"] + manifest["totals"]["files_dropped"]


def test_a_root_tree_missing_from_the_export_is_an_origin_problem(export: Path, tmp_path: Path) -> None:
    copy = tmp_path / "export"
    shutil.copytree(export, copy)
    revision = orc.read_table(next((copy / "orc" / "revision").glob("*.orc"))).to_pylist()[0]
    _drop_rows(copy / "orc" / "directory", "id", {revision["directory"]})
    _drop_rows(copy / "orc" / "directory_entry", "directory_id", {revision["directory"]})
    manifest = read_manifest(build(copy, tmp_path / "out"))
    assert manifest["walk"]["origin_problems"]["directory_missing"] == 1
    assert manifest["walk"]["origins_walked"] == 0 and manifest["totals"]["files_in"] == 0
