"""Versions over time: parent, changelog, diff, --as-of, the versions list, queries, the card."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from manifests.manifest import read_manifest, verify
from pipeline.cli import main
from pipeline.query import glob_regex
from tests.conftest import git_repo

JSON_DIR = Path(json.__file__).parent  # real code nobody here wrote


def commit_all(repo: Path, date: str) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.org", "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True, env=env)
    subprocess.run(["git", "-C", str(repo), "commit", "-q", "-m", "c"], check=True, env=env)


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One project visited twice (January: json as it is; June: a file removed, one edited, one
    added), and a second project visited only in June."""
    root = tmp_path_factory.mktemp("history")
    git_repo(JSON_DIR, root / "january", date="2024-01-10T00:00:00Z")
    shutil.copytree(root / "january", root / "june")
    (root / "june" / "tool.py").unlink()
    (root / "june" / "encoder.py").write_text((JSON_DIR / "encoder.py").read_text() + "\n# a change\n")
    (root / "june" / "scanner2.py").write_text((JSON_DIR / "scanner.py").read_text().replace("scanner", "lexer"))
    commit_all(root / "june", "2024-06-10T00:00:00Z")
    git_repo(Path(shutil.__file__).parent / "email" / "mime", root / "other", date="2024-06-11T00:00:00Z")
    export = root / "export"
    assert main(["export-git", str(root / "january"), str(root / "june"), str(root / "other"), "--out", str(export),
                 "--origin-url", "https://github.com/py/json", "--origin-url", "https://github.com/py/json",
                 "--origin-url", "https://github.com/py/mime"]) == 0
    output = root / "dataset"
    base = ["--input", str(export), "--output", str(output), "--workers", "1"]
    assert main(["run", "--version", "1.0", "--as-of", "2024-03-01", *base]) == 0
    assert main(["run", "--version", "2.0", *base]) == 0
    return output


def files(version: Path) -> set[str]:
    table = ds.dataset(version / "data", format="parquet").to_table(columns=["origin_url", "path"])
    return {f"{u}{p}" for u, p in zip(table["origin_url"].to_pylist(), table["path"].to_pylist(), strict=True)}


def test_as_of_builds_the_archive_as_it_stood_then(history: Path) -> None:
    january, june = files(history / "v1.0"), files(history / "v2.0")
    assert "https://github.com/py/json/tool.py" in january and "https://github.com/py/json/tool.py" not in june
    assert "https://github.com/py/json/scanner2.py" in june and "https://github.com/py/json/scanner2.py" not in january
    assert not any(f.startswith("https://github.com/py/mime") for f in january)  # not visited yet in March
    assert read_manifest(history / "v1.0")["input"]["as_of"] == "2024-03-01T00:00:00+00:00"
    assert read_manifest(history / "v2.0")["input"]["as_of"] is None
    dates = ds.dataset(history / "v1.0" / "data", format="parquet").to_table(columns=["revision_date"])
    assert {d.year for d in dates["revision_date"].to_pylist()} == {2024}


def test_the_changelog_names_the_parent_and_every_change_with_its_reason(history: Path) -> None:
    manifest = read_manifest(history / "v2.0")
    assert manifest["parent"] == "1.0" and read_manifest(history / "v1.0")["parent"] is None
    changes = json.loads((history / "v2.0" / "changes.json").read_text())
    assert changes["repositories"] == {"added": ["https://github.com/py/mime"], "removed": []}
    n_mime = sum(1 for f in files(history / "v2.0") if "/py/mime" in f)
    # scanner2.py is a near copy of scanner.py: one of the two survives (here scanner2.py, by blob_id),
    # so scanner.py leaves the dataset as a new duplicate
    assert changes["files"]["added"] == n_mime + 1 and changes["files"]["removed"] == 2
    assert changes["files"]["modified"] == 1
    assert changes["files"]["removed_by_reason"] == {"input_changed": 1, "new_duplicate": 1}
    assert changes["files"]["added_by_reason"] == {"input_changed": n_mime + 1}
    assert changes["input"] == {"fingerprint_changed": False, "as_of": ["2024-03-01T00:00:00+00:00", None]}
    rows = pq.read_table(history / "v2.0" / "changes.parquet").to_pylist()
    by_path = {(r["origin_url"], r["path"]): r for r in rows}
    assert by_path[("https://github.com/py/json", "/tool.py")]["change"] == "removed"
    assert by_path[("https://github.com/py/json", "/encoder.py")]["change"] == "modified"
    assert by_path[("https://github.com/py/json", "/scanner2.py")]["change"] == "added"
    assert by_path[("https://github.com/py/json", "/scanner.py")]["reason"] == "new_duplicate"
    log = (history / "v2.0" / "CHANGELOG.md").read_text()
    assert "# Changes from version 1.0 to 2.0" in log and "https://github.com/py/mime" in log
    card = (history / "v2.0" / "README.md").read_text()
    assert "Against version 1.0" in card and "languages.svg" in card
    listed = {f["path"] for f in manifest["files"]}
    assert listed == {"README.md", "CHANGELOG.md", "changes.json", "changes.parquet", "languages.svg",
                      "site/index.html"}
    assert verify(history / "v2.0") == []


def test_diff_prints_the_same_changes_for_any_two_versions(history: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["diff", "1.0", "2.0", "--output", str(history), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads((history / "v2.0" / "changes.json").read_text())
    assert main(["diff", "2.0", "1.0", "--output", str(history)]) == 0
    text = capsys.readouterr().out
    assert "# Changes from version 2.0 to 1.0" in text and "Repositories removed" in text
    assert main(["diff", "1.0", "9.9", "--output", str(history)]) == 2
    assert "no finished version 9.9" in capsys.readouterr().err


def test_a_finished_version_is_immutable(history: Path, capsys: pytest.CaptureFixture) -> None:
    export = str(history.parent / "export")
    before = (history / "v2.0" / "manifest.json").read_bytes()
    assert main(["run", "--version", "2.0", "--input", export, "--output", str(history), "--workers", "1"]) == 0
    assert "up to date" in capsys.readouterr().err
    assert (history / "v2.0" / "manifest.json").read_bytes() == before
    assert main(["run", "--version", "2.0", "--as-of", "2024-03-01", "--input", export, "--output",
                 str(history), "--workers", "1"]) == 2
    assert "different as-of date" in capsys.readouterr().err


def test_versions_lists_totals_and_whether_each_verifies(history: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture) -> None:
    output = tmp_path / "copy"
    shutil.copytree(history, output)

    def table() -> list[list[str]]:
        return [[c.strip() for c in line.strip("|").split("|")] for line in capsys.readouterr().out.splitlines()[2:]]

    assert main(["versions", "--output", str(output)]) == 0
    rows = table()
    assert [(r[0], r[2], r[4], r[7]) for r in rows] == [
        ("1.0", "-", str(read_manifest(history / "v1.0")["totals"]["files_kept"]), "ok"),
        ("2.0", "1.0", str(read_manifest(history / "v2.0")["totals"]["files_kept"]), "ok")]
    shard = next((output / "v1.0" / "data").rglob("*.parquet"))
    shard.write_bytes(shard.read_bytes()[:-1] + b"\0")
    assert main(["versions", "--output", str(output)]) == 1
    assert [r[7] for r in table()] == ["FAILED (1 problems)", "ok"]


def test_parent_can_be_named_and_must_exist(history: Path, capsys: pytest.CaptureFixture) -> None:
    export = str(history.parent / "export")
    args = ["--input", export, "--output", str(history), "--workers", "1"]
    assert main(["run", "--version", "3.0", "--parent", "7", *args]) == 2
    assert "--parent 7: no finished version 7" in capsys.readouterr().err
    assert main(["run", "--version", "3.0", "--parent", "1.0", *args]) == 0
    assert read_manifest(history / "v3.0")["parent"] == "1.0"
    shutil.rmtree(history / "v3.0")


def test_query_reads_only_what_it_needs(history: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    version = history / "v2.0"
    every = ds.dataset(version / "data", format="parquet").to_table().to_pylist()
    assert main(["query", "2.0", "--output", str(history), "--repo", "py/json", "--path", "/*coder.py",
                 "--contains", "def ", "--format", "jsonl"]) == 0
    got = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    expected = [r for r in every if r["repo_name"] == "py/json" and r["path"].endswith("coder.py")
                and "def " in r["content"]]
    assert sorted(r["path"] for r in got) == sorted(r["path"] for r in expected) == ["/decoder.py", "/encoder.py"]
    out = tmp_path / "q.parquet"
    assert main(["query", "2.0", "--output", str(history), "--repo", "*mime*", "--limit", "2", "--format", "parquet",
                 "--columns", "path,length_bytes", "--out", str(out)]) == 0
    table = pq.read_table(out)
    assert table.column_names == ["path", "length_bytes"] and table.num_rows == 2
    assert main(["query", "2.0", "--output", str(history), "--language", "Klingon"]) == 2
    assert "--language Klingon: not in version 2.0" in capsys.readouterr().err
    assert main(["query", "2.0", "--output", str(history), "--columns", "nope"]) == 2
    assert "column 'nope' is not in this version" in capsys.readouterr().err


@pytest.mark.parametrize(("glob", "text", "match"), [
    ("*.py", "/a/b.py", True), ("*.py", "/a/b.pyc", False), ("/a/?.c", "/a/x.c", True),
    ("/[ab]*", "/b1", True), ("/[!ab]*", "/b1", False), ("a+b(c)", "a+b(c)", True), ("*", "", True),
])
def test_globs_become_anchored_re2_patterns(glob: str, text: str, match: bool) -> None:
    import pyarrow as pa
    import pyarrow.compute as pc

    assert pc.match_substring_regex(pa.array([text]), glob_regex(glob)).to_pylist() == [match]


def test_the_card_has_an_svg_chart_of_every_language(history: Path) -> None:
    import xml.etree.ElementTree as ET

    manifest = read_manifest(history / "v2.0")
    root = ET.fromstring((history / "v2.0" / "languages.svg").read_text())
    ns = "{http://www.w3.org/2000/svg}"
    assert root.tag == f"{ns}svg" and int(root.get("width")) >= 600
    for key in ("files", "bytes"):
        bars = [r for r in root.iter(f"{ns}rect") if r.get("class") == key]
        titles = {r.find(f"{ns}title").text.split(":")[0]: float(r.get("width")) for r in bars}
        assert set(titles) == set(manifest["languages"])  # one bar per language
        values = {k: v[key] for k, v in manifest["languages"].items()}
        biggest = max(values, key=values.get)
        assert titles[biggest] == max(titles.values())  # the longest bar is the largest language


