"""Repository metadata: The Stack v2's columns on every file, and the more starred copy survives dedup."""

import inspect
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from manifests.manifest import read_manifest
from pipeline.cli import main
from pipeline.errors import PipelineError
from stages.metadata import RepoMetadata, read_metadata
from tests.test_dedup_graph import commit

CODE = inspect.getsource(json.encoder)
A, B = "https://github.com/alice/fork", "https://github.com/bob/original"


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("meta")
    commit(root / "a", {"encoder.py": CODE, "a_only.py": inspect.getsource(json.decoder)}, "2024-01-01T00:00:00Z")
    commit(root / "b", {"encoder.py": CODE}, "2024-01-01T00:00:00Z")
    assert main(["export-git", str(root / "a"), str(root / "b"), "--out", str(root / "export"),
                 "--origin-url", A, "--origin-url", B]) == 0
    return root / "export"


def build(export: Path, output: Path, *extra: str) -> Path:
    assert main(["run", "--version", "1", "--input", str(export), "--output", str(output), "--workers", "1",
                 *extra]) == 0
    return output / "v1"


def kept(version: Path) -> dict[str, dict]:
    rows = ds.dataset(version / "data", format="parquet").to_table().to_pylist()
    return {r["origin_url"] + r["path"]: r for r in rows}


def test_without_metadata_the_columns_are_null_and_the_first_copy_survives(export: Path, tmp_path: Path) -> None:
    rows = kept(build(export, tmp_path / "out"))
    assert f"{A}/encoder.py" in rows and f"{B}/encoder.py" not in rows  # same blob: origin URL breaks the tie
    assert all(r["star_events_count"] is None and r["github_id"] is None for r in rows.values())


def test_metadata_is_joined_and_the_more_starred_copy_survives(export: Path, tmp_path: Path) -> None:
    metadata = tmp_path / "repos.csv"
    metadata.write_text("repo_name,stars,forks,created_at,license,language,id\n"
                        "alice/fork,3,0,2023-01-01T00:00:00Z,MIT,Python,11\n"
                        "BOB/original.git,900,40,2019-05-01T00:00:00Z,MIT,Python,22\n")
    version = build(export, tmp_path / "out", "--repo-metadata", str(metadata))
    rows = kept(version)
    assert f"{B}/encoder.py" in rows and f"{A}/encoder.py" not in rows  # stars decide the survivor
    original = rows[f"{B}/encoder.py"]
    assert (original["star_events_count"], original["fork_events_count"], original["github_id"]) == (900, 40, 22)
    assert original["gha_license_id"] == "MIT" and original["gha_language"] == "Python"
    assert original["gha_created_at"].year == 2019 and original["gha_pushed_at"] is None
    assert rows[f"{A}/a_only.py"]["star_events_count"] == 3
    manifest = read_manifest(version)
    assert manifest["repo_metadata"]["file"] == "repos.csv" and len(manifest["repo_metadata"]["sha256"]) == 64
    ledger = ds.dataset(version / "dropped", format="parquet").to_table().to_pylist()
    duplicate = next(r for r in ledger if r["origin_url"] == A and r["path"] == "/encoder.py")
    assert duplicate["reason"] == "exact_duplicate"


def test_bad_metadata_files_are_one_line(tmp_path: Path) -> None:
    dup = tmp_path / "dup.jsonl"
    dup.write_text('{"origin_url": "https://github.com/a/b", "stars": 1}\n{"origin_url": "https://github.com/A/b/"}\n')
    with pytest.raises(PipelineError, match="appears more than once"):
        read_metadata(dup)
    nokey = tmp_path / "nokey.csv"
    nokey.write_text("stars\n1\n")
    with pytest.raises(PipelineError, match="needs an origin_url or a repo_name"):
        read_metadata(nokey)
    other = tmp_path / "x.txt"
    other.write_text("")
    with pytest.raises(PipelineError, match="must be .parquet, .csv or .jsonl"):
        read_metadata(other)


def test_the_stage_matches_by_url_then_by_name(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    path = tmp_path / "m.parquet"
    pq.write_table(pa.table({"origin_url": ["https://gitlab.com/g/sub/p"], "star_events_count": [5]}), path)
    stage = RepoMetadata(str(path), "0" * 64)
    rows = pa.table({"origin_url": ["https://gitlab.com/g/sub/p.git", "https://x.org/y"],
                     "repo_name": ["gitlab.com/g/sub/p", "x.org/y"], "content": ["a", "b"]})
    result = stage.process(rows, stage.setup())
    assert result.kept["star_events_count"].to_pylist() == [5, None]
    assert result.counters == {"in": 2, "kept": 2, "files_with_metadata": 1}
    assert result.kept.column_names[-1] == "content"
