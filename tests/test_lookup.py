"""``lookup`` and ``opt-out add`` on built versions of the bundled export: one repository partly in
and partly out (Apache-2.0 code; prose, vendored and duplicate files out), one wholly out (GPL)."""

import json
from pathlib import Path

import pytest

from pipeline.cli import main
from tests.conftest import copy_version

STACK = "https://github.com/bigcode-project/the-stack-v2"
GPL = "https://example.org/swh-graph/git2graph-sample-repo"


def lookup(capsys: pytest.CaptureFixture, output: Path, *args: str) -> dict:
    assert main(["lookup", *args, "--output", str(output), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def dataset(built_sample: Path, tmp_path: Path) -> Path:
    return copy_version(built_sample, tmp_path)


@pytest.mark.parametrize("target", [STACK, STACK + ".git", "bigcode-project/the-stack-v2", "BigCode-Project/*"])
def test_repository_forms_find_a_repository_partly_in_and_partly_out(
        dataset: Path, capsys: pytest.CaptureFixture, target: str) -> None:
    (version,) = lookup(capsys, dataset, target)["versions"]
    assert version["version"] == "2.1" and version["repositories"] == [STACK]
    assert version["files_in"] == 51 and version["files_out"] == 10
    assert version["out_by_reason"]["near_dedup/near_duplicate"] == 8
    ignore = next(r for r in version["out"] if r["path"] == "/.gitignore")
    assert (ignore["stage"], ignore["reason"], ignore["detail"]) == ("filters", "vendored", "enry is_vendor")


def test_a_repository_wholly_out_says_why(dataset: Path, capsys: pytest.CaptureFixture) -> None:
    (version,) = lookup(capsys, dataset, GPL)["versions"]
    assert version["files_in"] == 0 and version["files_out"] > 0
    assert version["out_by_reason"] == {"language/unknown_language": version["files_out"]}  # its files are data
    assert all(r["stage"] and r["reason"] and r["origin_url"] == GPL for r in version["out"])


def test_blob_and_path_targets(dataset: Path, capsys: pytest.CaptureFixture) -> None:
    (readme,) = lookup(capsys, dataset, "/README.md")["versions"]
    assert [r["origin_url"] for r in readme["in"]] == [STACK] and readme["files_out"] == 0
    (version,) = lookup(capsys, dataset, "/.gitignore")["versions"]
    assert STACK in {r["origin_url"] for r in version["out"]} and version["files_in"] == 0
    blob = version["out"][0]["blob_id"]
    (by_blob,) = lookup(capsys, dataset, blob)["versions"]
    assert blob in {r["blob_id"] for r in by_blob["out"]}
    (python,) = lookup(capsys, dataset, "/ir/*.py")["versions"]
    assert python["files_in"] >= 4 and all(r["path"].startswith("/ir/") for r in python["in"])


def test_an_unknown_repository_and_a_bad_target(dataset: Path, capsys: pytest.CaptureFixture) -> None:
    (version,) = lookup(capsys, dataset, "nobody/nothing")["versions"]
    assert version["files_in"] == version["files_out"] == 0
    assert main(["lookup", "not a target", "--output", str(dataset)]) == 2
    assert "not a lookup target" in capsys.readouterr().err


def test_opt_out_add_then_a_carried_opt_out_is_found(dataset: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture) -> None:
    registry = tmp_path / "optout.txt"
    assert main(["opt-out", "add", STACK, "--registry", str(registry), "--reason", "request #7",
                 "--date", "2024-06-01", "--output", str(dataset)]) == 0
    out = capsys.readouterr().out
    assert "the next version removes 51 file(s)" in out
    assert registry.read_text() == f"{STACK} 2024-06-01 request #7\n"
    assert main(["opt-out", "add", "bigcode-project/the-stack-v2", "--registry", str(registry),
                 "--output", str(dataset)]) == 0
    assert "already covered" in capsys.readouterr().out and len(registry.read_text().splitlines()) == 1
    assert main(["lookup", STACK, "--output", str(dataset), "--registry", str(registry)]) == 0
    assert "the next version leaves it out" in capsys.readouterr().out
    # version 3 with the registry, version 4 without it: the opt-out is carried
    assert main(["run", "--version", "3", "--output", str(dataset), "--opt-out", str(registry), "--workers", "1"]) == 0
    registry.write_text("")
    assert main(["run", "--version", "4", "--output", str(dataset), "--opt-out", str(registry), "--workers", "1"]) == 0
    capsys.readouterr()
    versions = {v["version"]: v for v in lookup(capsys, dataset, STACK)["versions"]}
    assert versions["2.1"]["files_in"] == 51
    assert versions["3"]["files_in"] == 0 and versions["3"]["opt_out"] == [f"{STACK} (2024-06-01)"]
    # the registry no longer names it, but version 3 removed it: carried, dated by the version that did
    assert versions["4"]["files_in"] == 0 and versions["4"]["opt_out"][0].startswith(f"{STACK} (")
    assert versions["4"]["out_by_reason"]["opt_out/opted_out"] == 61
    (only,) = lookup(capsys, dataset, STACK, "--version", "4")["versions"]
    assert only["version"] == "4"
