"""License detection through whole builds: propagation, SPDX lines, drops, the cache across versions."""

import inspect
import json
import textwrap
from pathlib import Path

import pyarrow.dataset as ds
import pytest

from manifests.manifest import read_manifest
from pipeline.cli import main
from tests.test_dedup_graph import commit

CODE = inspect.getsource(json.encoder)  # real code nobody here wrote
OTHER = inspect.getsource(json.decoder)
SCANNER = inspect.getsource(json.scanner)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from licensedcode.models import load_licenses

    texts = load_licenses()
    root = tmp_path_factory.mktemp("licenses")
    commit(root / "proj", {
        "LICENSE": texts["mit"].text,
        "src/encoder.py": CODE,
        "src/gpl/COPYING": texts["gpl-3.0"].text,
        "src/gpl/decoder.py": OTHER,
        "tagged.py": "# SPDX-License-Identifier: GPL-2.0-only\n" + SCANNER,
        "dual.py": "# SPDX-License-Identifier: MIT OR GPL-2.0-only\n" + SCANNER.replace("scanner", "lexer"),
    }, "2024-01-01T00:00:00Z")
    commit(root / "bare", {"lib.py": inspect.getsource(textwrap)},
           "2024-01-01T00:00:00Z")
    export = root / "export"
    assert main(["export-git", str(root / "proj"), str(root / "bare"), "--out", str(export),
                 "--origin-url", "https://github.com/o/proj", "--origin-url", "https://github.com/o/bare"]) == 0
    output = root / "dataset"
    for version in ("1", "2"):
        assert main(["run", "--version", version, "--input", str(export), "--output", str(output),
                     "--workers", "1"]) == 0
    return output


def rows(folder: Path, sub: str) -> dict[str, dict]:
    table = ds.dataset(folder / sub, format="parquet").to_table().to_pylist()
    return {f"{r['origin_url'].rsplit('/', 1)[1]}{r['path']}": r for r in table}


def test_licenses_propagate_down_the_tree_and_non_permissive_files_are_dropped(built: Path) -> None:
    data, ledger = rows(built / "v1", "data"), rows(built / "v1", "dropped")
    assert data["proj/src/encoder.py"]["detected_licenses"] == ["MIT"]
    assert data["proj/src/encoder.py"]["license_type"] == "permissive"
    # the GPL under src/gpl/ adds to the MIT of the root: non-permissive, in the ledger with the licenses
    gpl = ledger["proj/src/gpl/decoder.py"]
    assert (gpl["stage"], gpl["reason"]) == ("license", "non_permissive")
    assert "GPL-3.0" in gpl["detail"] and "MIT" in gpl["detail"]
    # a file's own SPDX line applies to that file alone
    tagged = ledger["proj/tagged.py"]
    assert tagged["reason"] == "non_permissive" and "GPL-2.0-only" in tagged["detail"]
    assert data["proj/dual.py"]["license_type"] == "permissive"  # MIT OR GPL: one permissive side
    assert data["proj/dual.py"]["detected_licenses"] == ["GPL-2.0-only", "MIT"]  # the ids; the OR decided the type
    # no license file, no SPDX line: no_license, kept by default as The Stack v2 did
    assert data["bare/lib.py"]["detected_licenses"] == [] and data["bare/lib.py"]["license_type"] == "no_license"
    manifest = read_manifest(built / "v1")
    assert manifest["license_types"]["permissive"]["files"] == sum(
        1 for r in data.values() if r["license_type"] == "permissive")
    assert manifest["licenses"]["none"]["files"] == 1


def test_scancode_runs_once_per_distinct_text_and_never_again_in_the_next_version(built: Path) -> None:
    first = next(s for s in read_manifest(built / "v1")["stages"] if s["name"] == "license")["counters"]
    second = next(s for s in read_manifest(built / "v2")["stages"] if s["name"] == "license")["counters"]
    assert first["license_files"] == 2 and first["scancode_runs"] + first["exact_matches"] == 2
    assert second["license_files"] == 2 and second["scancode_runs"] == 0 and second["scancode_cache_hits"] == 2
    assert len(list((built / ".cache" / "licenses").iterdir())) == 1  # compacted
    assert {s["path"]: s["sha256"] for s in read_manifest(built / "v1")["shards"]} == {
        s["path"]: s["sha256"] for s in read_manifest(built / "v2")["shards"]}


def test_output_folders_given_one_license_cache_share_its_results(built: Path, tmp_path: Path) -> None:
    export, shared = built.parent / "export", tmp_path / "shared-cache"
    for name in ("a", "b"):
        assert main(["run", "--version", "1", "--input", str(export), "--output", str(tmp_path / name),
                     "--workers", "1", "--license-cache", str(shared)]) == 0
    counters = [next(s for s in read_manifest(tmp_path / name / "v1")["stages"] if s["name"] == "license")["counters"]
                for name in ("a", "b")]
    assert counters[0]["scancode_runs"] + counters[0]["exact_matches"] == 2
    assert counters[1]["scancode_runs"] == counters[1]["exact_matches"] == 0 and counters[1]["scancode_cache_hits"] == 2
    assert not (tmp_path / "a" / ".cache" / "licenses").exists() and len(list(shared.iterdir())) == 1
    assert (tmp_path / "a" / "v1" / "SHA256SUMS").read_bytes() == (tmp_path / "b" / "v1" / "SHA256SUMS").read_bytes()
    # same shards as the folder with its own cache
    assert {s["path"]: s["sha256"] for s in read_manifest(built / "v1")["shards"]} == {
        s["path"]: s["sha256"] for s in read_manifest(tmp_path / "a" / "v1")["shards"]}


def test_a_license_cache_that_cannot_be_written_is_one_line(built: Path, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(["run", "--version", "1", "--input", str(built.parent / "export"), "--output",
                 str(tmp_path / "out"), "--workers", "1", "--license-cache", str(blocker / "cache")]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot write the license cache" in err[0] and str(blocker) in err[0]


def test_permissive_only_drops_files_without_a_license(built: Path, tmp_path: Path) -> None:
    config = tmp_path / "strict.toml"
    config.write_text("[license]\npermissive_only = true\n")
    export = built.parent / "export"
    assert main(["run", "--version", "strict", "--input", str(export), "--output", str(built), "--workers", "1",
                 "--config", str(config)]) == 0
    ledger = rows(built / "vstrict", "dropped")
    assert ledger["bare/lib.py"]["reason"] == "no_license"
    assert "proj/src/encoder.py" in rows(built / "vstrict", "data")


def test_query_by_license_and_license_type(built: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["query", "1", "--output", str(built), "--license", "MIT", "--format", "jsonl",
                 "--columns", "repo_name,path,detected_licenses"]) == 0
    got = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert sorted(r["path"] for r in got) == ["/LICENSE", "/dual.py", "/src/encoder.py"]  # documentation is kept
    assert main(["query", "1", "--output", str(built), "--license-type", "no_license", "--language", "python",
                 "--format", "jsonl", "--columns", "repo_name,path"]) == 0
    assert [json.loads(line) for line in capsys.readouterr().out.splitlines()] == [
        {"repo_name": "o/bare", "path": "/lib.py"}]


def test_the_changelog_says_when_files_left_for_their_license(built: Path, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture) -> None:
    if not (built / "vstrict").exists():  # built by test_permissive_only_drops_files_without_a_license
        config = tmp_path / "strict.toml"
        config.write_text("[license]\npermissive_only = true\n")
        assert main(["run", "--version", "strict", "--input", str(built.parent / "export"), "--output", str(built),
                     "--workers", "1", "--config", str(config)]) == 0
    assert main(["diff", "1", "strict", "--output", str(built), "--json"]) == 0
    changes = json.loads(capsys.readouterr().out)
    assert changes["files"]["removed_by_reason"] == {"license_changed": 1}
    assert changes["repositories"]["removed"] == ["https://github.com/o/bare"]
    assert changes["config"] == {"license.permissive_only": [False, True]}
