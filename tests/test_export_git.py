"""Tests for pipeline.export_git: git repositories -> Software Heritage graph export."""

from __future__ import annotations

import gzip
import hashlib
import os
import subprocess
import tarfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.orc as orc
import pytest

import pipeline.export_git as export_git
from pipeline.export_git import TABLES, export_repositories

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_EXPORT = ROOT / "examples" / "sample-export"
SAMPLE_REPO_TGZ = ROOT / "tests" / "data" / "sample-repo.tgz"
SAMPLE_URL = "https://example.org/swh-graph/git2graph-sample-repo"
EMPTY_SNAPSHOT = "1a8893e6a86f444e8be8e7bda6cb34fb1735a00e"
EMPTY_BLOB = "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"
SUBMODULE_COMMIT = "0123456789abcdef0123456789abcdef01234567"  # not in the repository

AUTHOR = b"Ann Author <ann@example.org>"
COMMITTER = b"Carl Committer <carl@example.org>"


# ----------------------------------------------------------------------------- helpers


def git(repo: Path, *args: str, date: str = "1700000000 +0200", input: bytes | None = None) -> bytes:
    """Run git in ``repo`` with fixed identities and dates, isolated from user config."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("GIT_")},
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "Ann Author",
        "GIT_AUTHOR_EMAIL": "ann@example.org",
        "GIT_AUTHOR_DATE": date,
        "GIT_COMMITTER_NAME": "Carl Committer",
        "GIT_COMMITTER_EMAIL": "carl@example.org",
        "GIT_COMMITTER_DATE": date.split()[0] + " -0130",
    }
    proc = subprocess.run(
        ["git", "-c", "safe.directory=*", "-C", str(repo), *args],
        env=env,
        input=input,
        capture_output=True,
        check=True,
    )
    return proc.stdout


def rev_parse(repo: Path, rev: str) -> str:
    return git(repo, "rev-parse", rev).decode().strip()


def read_table(out: Path, table: str) -> list[dict[str, Any]]:
    """A table's rows; a table with none is an empty folder, as Software Heritage's writer leaves it."""
    files = sorted((out / "orc" / table).glob(f"{table}-*.orc"))
    assert (out / "orc" / table).is_dir() and len(files) <= 1, files
    return orc.ORCFile(files[0]).read().to_pylist() if files else []


def read_all(out: Path) -> dict[str, list[dict[str, Any]]]:
    return {table: read_table(out, table) for table in TABLES}


def reachable(repo: Path) -> dict[str, set[str]]:
    """Object ids by type, as git lists them."""
    ids = git(repo, "rev-list", "--objects", "--no-object-names", "--all")
    types = git(repo, "cat-file", "--batch-check=%(objecttype) %(objectname)", input=ids)
    by_type: dict[str, set[str]] = {"blob": set(), "tree": set(), "commit": set(), "tag": set()}
    for line in types.decode().splitlines():
        otype, oid = line.split()
        by_type[otype].add(oid)
    return by_type


def export(repo: Path, out: Path, **kwargs: Any) -> dict[str, int]:
    kwargs.setdefault("visit_date", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC))
    return export_repositories([repo], out, **kwargs)


@pytest.fixture
def feature_repo(tmp_path: Path) -> Path:
    """A repository with most of what git can hold (see the assertions below)."""
    repo = tmp_path / "feature-repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "empty").write_bytes(b"")
    (repo / "bin.dat").write_bytes(bytes(range(256)) * 40)
    (repo / "a" / "b" / "c").mkdir(parents=True)
    (repo / "a" / "b" / "c" / "deep.txt").write_bytes(b"deep\n")
    (repo / "a" / "copy.txt").write_bytes(b"deep\n")  # same blob twice
    (repo / "run.sh").write_bytes(b"#!/bin/sh\necho hi\n")
    (repo / "run.sh").chmod(0o755)
    os.symlink("a/b/c/deep.txt", repo / "link")
    with open(os.fsencode(repo) + b"/caf\xe9.txt", "wb") as f:  # Latin-1 name, not UTF-8
        f.write(b"latin-1 name\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "first")
    git(repo, "branch", "feature")
    git(repo, "tag", "-a", "v1.0", "-m", "release 1.0", date="1700000500 +0200")
    git(repo, "tag", "-a", "v1.0-again", "v1.0", "-m", "a tag of a tag", date="1700000600 +0200")
    blob = git(repo, "rev-parse", "HEAD:a/copy.txt").decode().strip()
    git(repo, "tag", "blob-tag", blob)
    # a submodule entry whose commit is not in the repository
    git(repo, "update-index", "--add", "--cacheinfo", f"160000,{SUBMODULE_COMMIT},sub")
    (repo / "msg").write_bytes("second: d\xe9j\xe0 vu\n".encode("latin-1"))
    git(repo, "-c", "i18n.commitEncoding=ISO-8859-1", "commit", "-q", "-F", "msg", date="1700001000 +0200")
    git(repo, "tag", "light")  # lightweight tag
    return repo


@pytest.fixture
def feature_export(feature_repo: Path, tmp_path: Path) -> Path:
    out = tmp_path / "export"
    export(feature_repo, out, origin_urls=["https://example.org/feature"])
    return out


# ------------------------------------------------------------ the public format: fixture


def test_sample_repo_reproduces_the_reference_export(tmp_path: Path) -> None:
    with tarfile.open(SAMPLE_REPO_TGZ) as tar:
        tar.extractall(tmp_path, filter="data")
    out = tmp_path / "export"
    counts = export_repositories(
        [tmp_path / "sample-repo"],
        out,
        [SAMPLE_URL],
        visit_date=datetime(2024, 4, 16, 12, 0, tzinfo=UTC),
        status_date=datetime(2024, 4, 16, 12, 3, tzinfo=UTC),
    )
    assert {t: counts[t] for t in ("content", "directory", "revision", "release", "snapshot_branch")} == {
        "content": 6,
        "directory": 7,
        "revision": 7,
        "release": 2,
        "snapshot_branch": 6,
    }
    for table in TABLES:
        mine_files = list((out / "orc" / table).glob("*.orc"))
        if not mine_files:  # no row of this origin (e.g. skipped_content): an empty folder
            assert counts[table] == 0 and (out / "orc" / table).is_dir()
            continue
        [mine_file] = mine_files
        [ref_file] = (SAMPLE_EXPORT / "orc" / table).glob("*.orc")
        mine_schema = orc.ORCFile(mine_file).schema
        ref_schema = orc.ORCFile(ref_file).schema.remove_metadata()
        assert mine_schema.equals(ref_schema), table
        assert orc.ORCFile(mine_file).compression == "ZSTD"
        ref_rows = orc.ORCFile(ref_file).read().to_pylist()
        mine_rows = orc.ORCFile(mine_file).read().to_pylist()
        assert len(mine_rows) == counts[table]
        for row in mine_rows:  # every column, raw_manifest and timestamps included
            assert row in ref_rows, (table, row)
    rows = read_all(out)
    assert rows["snapshot"] == [{"id": "abc888898124270905a0ef3c67e872ce08e7e0c1"}]
    assert rows["origin_visit_status"][0]["date"] == datetime(2024, 4, 16, 12, 3)
    # and nothing of this origin is missing: the sub-tables are complete for our ids
    ref = {
        t: read_table(SAMPLE_EXPORT, t) for t in ("directory_entry", "revision_history", "snapshot_branch")
    }
    dirs = {r["id"] for r in rows["directory"]}
    assert sorted(map(repr, rows["directory_entry"])) == sorted(
        repr(r) for r in ref["directory_entry"] if r["directory_id"] in dirs
    )
    revs = {r["id"] for r in rows["revision"]}
    assert len(rows["revision_history"]) == len([r for r in ref["revision_history"] if r["id"] in revs])
    assert len(rows["snapshot_branch"]) == len(
        [r for r in ref["snapshot_branch"] if r["snapshot_id"] == rows["snapshot"][0]["id"]]
    )
    # blobs: the same bytes as the reference content store
    for row in rows["content"]:
        name = row["sha1"]
        mine = gzip.decompress((out / "content_store" / "content" / name).read_bytes())
        ref_blob = gzip.decompress((SAMPLE_EXPORT / "content_store" / "content" / name).read_bytes())
        assert mine == ref_blob


# ------------------------------------------------------------------- repositories we make


def test_ids_are_gits_own_hashes(feature_repo: Path, feature_export: Path) -> None:
    rows = read_all(feature_export)
    objects = reachable(feature_repo)
    assert {r["id"] for r in rows["revision"]} == objects["commit"]
    assert {r["id"] for r in rows["directory"]} == objects["tree"]
    assert {r["sha1_git"] for r in rows["content"]} == objects["blob"]
    assert {r["id"] for r in rows["release"]} == objects["tag"]
    assert len(rows["content"]) == len(objects["blob"])  # the duplicated blob is written once
    assert SUBMODULE_COMMIT not in {r["id"] for r in rows["revision"]}
    for table in ("revision", "directory", "release"):
        for row in rows[table]:
            assert row["raw_manifest"] is None  # git-made objects need none

    branches = {r["name"]: (r["target"], r["target_type"]) for r in rows["snapshot_branch"]}
    assert branches == {
        b"HEAD": (b"refs/heads/main".hex(), "alias"),
        b"refs/heads/main": (rev_parse(feature_repo, "main"), "revision"),
        b"refs/heads/feature": (rev_parse(feature_repo, "feature"), "revision"),
        b"refs/tags/v1.0": (rev_parse(feature_repo, "v1.0"), "release"),
        b"refs/tags/v1.0-again": (rev_parse(feature_repo, "v1.0-again"), "release"),
        b"refs/tags/light": (rev_parse(feature_repo, "main"), "revision"),
        b"refs/tags/blob-tag": (rev_parse(feature_repo, "main:a/copy.txt"), "content"),
    }
    [origin] = rows["origin"]
    assert origin == {
        "id": hashlib.sha1(b"https://example.org/feature").hexdigest(),
        "url": "https://example.org/feature",
    }
    [status] = rows["origin_visit_status"]
    assert status["snapshot"] == rows["snapshot"][0]["id"]
    assert status["status"] == "full" and status["visit"] == 1 and status["type"] == "git"
    assert status["date"] == datetime(2024, 1, 2, 3, 4, 5)  # status date defaults to the visit date


def test_directory_entries(feature_repo: Path, feature_export: Path) -> None:
    rows = read_all(feature_export)
    root = rev_parse(feature_repo, "main^{tree}")
    entries = {r["name"]: r for r in rows["directory_entry"] if r["directory_id"] == root}

    def entry(name: bytes) -> tuple[str, str, int]:
        return entries[name]["type"], entries[name]["target"], entries[name]["perms"]

    assert entry(b"empty") == ("file", EMPTY_BLOB, 0o100644)
    assert entry(b"run.sh")[::2] == ("file", 0o100755)
    assert entry(b"link") == ("file", rev_parse(feature_repo, "main:link"), 0o120000)
    assert entry(b"sub") == ("rev", SUBMODULE_COMMIT, 0o160000)
    assert entry(b"a") == ("dir", rev_parse(feature_repo, "main:a"), 0o040000)
    assert entry(b"caf\xe9.txt")[0] == "file"  # the name's bytes are kept as they are
    deep = rev_parse(feature_repo, "main:a/b/c")
    assert [(r["name"], r["target"]) for r in rows["directory_entry"] if r["directory_id"] == deep] == [
        (b"deep.txt", rev_parse(feature_repo, "main:a/b/c/deep.txt"))
    ]
    contents = {r["sha1_git"]: r for r in rows["content"]}
    assert contents[EMPTY_BLOB]["length"] == 0
    assert contents[rev_parse(feature_repo, "main:bin.dat")]["length"] == 256 * 40
    link = contents[rev_parse(feature_repo, "main:link")]
    assert link["length"] == len(b"a/b/c/deep.txt") and link["status"] == "visible"
    assert all(r["data"] is None for r in rows["content"])


def test_content_store_blobs_rehash(feature_export: Path) -> None:
    rows = read_table(feature_export, "content")
    store = feature_export / "content_store" / "content"
    assert sorted(p.name for p in store.iterdir()) == sorted(r["sha1"] for r in rows)
    for row in rows:
        data = gzip.decompress((store / row["sha1"]).read_bytes())
        assert hashlib.sha1(data).hexdigest() == row["sha1"]
        assert hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest() == row["sha1_git"]
        assert hashlib.sha256(data).hexdigest() == row["sha256"]
        assert hashlib.blake2s(data).hexdigest() == row["blake2s256"]
        assert len(data) == row["length"]


def test_revisions_releases_and_dates(feature_repo: Path, feature_export: Path) -> None:
    rows = read_all(feature_export)
    revs = {r["id"]: r for r in rows["revision"]}
    first, second = rev_parse(feature_repo, "feature"), rev_parse(feature_repo, "main")
    rev = revs[second]
    assert rev["message"] == "second: d\xe9j\xe0 vu\n".encode("latin-1")
    assert rev["author"] == hashlib.sha256(AUTHOR).digest()  # pseudonymised like the public export
    assert rev["committer"] == hashlib.sha256(COMMITTER).digest()
    assert rev["date"] == datetime(2023, 11, 14, 22, 30)  # 1700001000, read back as naive UTC
    assert (rev["date_offset"], rev["date_raw_offset_bytes"]) == (120, b"+0200")
    assert (rev["committer_offset"], rev["committer_date_raw_offset_bytes"]) == (-90, b"-0130")
    assert rev["directory"] == rev_parse(feature_repo, "main^{tree}") and rev["type"] == "git"
    assert [r for r in rows["revision_history"] if r["id"] == second] == [
        {"id": second, "parent_id": first, "parent_rank": 0}
    ]
    assert rows["revision_extra_headers"] == [{"id": second, "key": b"encoding", "value": b"ISO-8859-1"}]

    rels = {r["name"]: r for r in rows["release"]}
    v1 = rels[b"v1.0"]
    assert v1["id"] == rev_parse(feature_repo, "v1.0")
    assert (v1["target"], v1["target_type"]) == (first, "revision")
    assert v1["message"] == b"release 1.0\n"
    assert v1["author"] == hashlib.sha256(COMMITTER).digest()
    assert v1["date"] == datetime(2023, 11, 14, 22, 21, 40) and v1["date_offset"] == -90
    assert (rels[b"v1.0-again"]["target"], rels[b"v1.0-again"]["target_type"]) == (v1["id"], "release")


def test_reexport_is_byte_identical(
    feature_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outs = [tmp_path / "one", tmp_path / "two", tmp_path / "streamed"]
    export(feature_repo, outs[0])
    export(feature_repo, outs[1])
    monkeypatch.setattr(export_git, "_STREAM_BLOB_SIZE", 100)  # big-blob path, chunk by chunk
    for module in (export_git.git, export_git.orc):  # chunk size of the object stream and of big blobs
        monkeypatch.setattr(module, "_CHUNK", 64)
    export(feature_repo, outs[2])

    def files(out: Path) -> dict[str, bytes]:
        return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}

    first = files(outs[0])
    assert any(name.endswith(".orc") for name in first)
    assert files(outs[1]) == first
    assert files(outs[2]) == first
    export(feature_repo, outs[0])  # again into the same folder: replaced, not duplicated
    assert files(outs[0]) == first


def test_detached_head_and_default_dates(feature_repo: Path, tmp_path: Path) -> None:
    git(feature_repo, "checkout", "-q", "--detach", "feature")
    git(feature_repo, "update-ref", "refs/pull/1/head", "feature")
    git(feature_repo, "update-ref", "refs/pull/1/merge", "main")  # GitHub's: swh skips these
    out = tmp_path / "export"
    (out / "orc" / "origin").mkdir(parents=True)
    (out / "orc" / "origin" / "origin-stale.orc").write_bytes(b"from an earlier export")
    export_repositories([feature_repo], out)
    rows = read_all(out)  # checks there is one file per table: the stale one is gone
    names = {r["name"] for r in rows["snapshot_branch"]}
    assert b"refs/pull/1/head" in names and b"refs/pull/1/merge" not in names
    head = [r for r in rows["snapshot_branch"] if r["name"] == b"HEAD"]
    assert head == [
        {
            "snapshot_id": rows["snapshot"][0]["id"],
            "name": b"HEAD",
            "target": rev_parse(feature_repo, "feature"),
            "target_type": "revision",
        }
    ]
    assert rows["origin"][0]["url"] == feature_repo.resolve().as_uri()
    # default visit date: the latest committer/tagger date (1700001000), status date the same
    assert rows["origin_visit"][0]["date"] == datetime(2023, 11, 14, 22, 30)
    assert rows["origin_visit_status"][0]["date"] == datetime(2023, 11, 14, 22, 30)


def test_empty_repository(tmp_path: Path) -> None:
    repo = tmp_path / "empty-repo"
    repo.mkdir()
    git(repo, "init", "-q")
    out = tmp_path / "export"
    counts = export_repositories([repo], out, ["https://example.org/empty"])
    rows = read_all(out)
    assert rows["snapshot"] == [{"id": EMPTY_SNAPSHOT}]
    assert rows["snapshot_branch"] == [] and counts["content"] == 0 and counts["revision"] == 0
    assert list((out / "orc" / "content").iterdir()) == []  # empty tables are empty folders
    assert rows["origin_visit_status"][0]["snapshot"] == EMPTY_SNAPSHOT
    assert rows["origin_visit"][0]["date"] == datetime(1970, 1, 1)


def test_not_a_git_repository(tmp_path: Path, feature_repo: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(ValueError, match="not a git repository.*plain"):
        export_repositories([plain], tmp_path / "out")
    with pytest.raises(ValueError, match="not a git repository.*feature-repo/a"):
        export_repositories([feature_repo / "a"], tmp_path / "out")  # inside one is not one
    with pytest.raises(ValueError, match="not a git repository.*missing"):
        export_repositories([tmp_path / "missing"], tmp_path / "out")


def test_objects_swh_model_cannot_rebuild_keep_raw_manifest(tmp_path: Path) -> None:
    repo = tmp_path / "odd"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    blob = git(repo, "hash-object", "-w", "--stdin", input=b"x\n").decode().strip()
    sub = git(repo, "mktree", input=f"100644 blob {blob}\tx\n".encode()).decode().strip()
    # '040000' (zero-padded mode) is valid for git, swh.model writes '40000'
    tree_body = b"040000 d\0" + bytes.fromhex(sub) + b"100644 f\0" + bytes.fromhex(blob)
    tree = git(repo, "hash-object", "-t", "tree", "-w", "--literally", "--stdin", input=tree_body)
    # a custom header before 'encoding': swh.model writes encoding first
    commit_body = (
        b"tree " + tree.strip() + b"\n"
        b"author " + AUTHOR + b" 1600000000 -0000\n"
        b"committer " + COMMITTER + b" 1600000000 +0530\n"
        b"x-custom some value\n"
        b"encoding ISO-8859-1\n"
        b"\nodd commit\n"
    )
    commit = git(repo, "hash-object", "-t", "commit", "-w", "--literally", "--stdin", input=commit_body)
    git(repo, "update-ref", "refs/heads/main", commit.decode().strip())
    out = tmp_path / "export"
    export(repo, out)
    rows = read_all(out)
    [rev] = rows["revision"]
    assert rev["id"] == commit.decode().strip()
    assert rev["raw_manifest"] == b"commit %d\0" % len(commit_body) + commit_body
    assert (rev["date_raw_offset_bytes"], rev["date_offset"]) == (b"-0000", 0)
    assert rev["committer_offset"] == 330
    assert [(r["key"], r["value"]) for r in rows["revision_extra_headers"]] == [
        (b"encoding", b"ISO-8859-1"),
        (b"x-custom", b"some value"),
    ]
    dirs = {r["id"]: r["raw_manifest"] for r in rows["directory"]}
    assert dirs[tree.decode().strip()] == b"tree %d\0" % len(tree_body) + tree_body
    assert dirs[sub] is None
    for raw in [rev["raw_manifest"], *filter(None, dirs.values())]:
        assert hashlib.sha1(raw).hexdigest() in {rev["id"], *dirs}


def test_shared_objects_written_once_and_max_content_size(feature_repo: Path, tmp_path: Path) -> None:
    mirror = tmp_path / "mirror.git"
    subprocess.run(
        ["git", "-c", "safe.directory=*", "clone", "-q", "--mirror", str(feature_repo), str(mirror)],
        check=True,
        capture_output=True,
    )
    out = tmp_path / "export"
    counts = export_repositories(
        [feature_repo, mirror], out, ["https://example.org/a", "https://example.org/b"], max_content_size=1000
    )
    rows = read_all(out)
    assert len(rows["origin"]) == 2 and len(rows["origin_visit_status"]) == 2
    assert len(rows["snapshot"]) == 1  # same refs, same snapshot
    assert {r["snapshot"] for r in rows["origin_visit_status"]} == {rows["snapshot"][0]["id"]}
    blobs = reachable(feature_repo)["blob"]
    assert counts["content"] + counts["skipped_content"] == len(blobs)
    [skipped] = rows["skipped_content"]  # bin.dat is the only blob of 1000 bytes or more
    assert skipped["sha1_git"] == rev_parse(feature_repo, "main:bin.dat")
    assert (skipped["status"], skipped["reason"], skipped["length"]) == ("absent", "Content too large", 10240)
    assert not (out / "content_store" / "content" / skipped["sha1"]).exists()
    for table in ("revision", "directory", "directory_entry", "content"):
        keys = [repr(sorted(r.items())) for r in rows[table]]
        assert len(keys) == len(set(keys)), table
    # one URL given twice: one origin, visited twice (visits numbered in order)
    export_repositories([feature_repo, mirror], tmp_path / "again", ["https://example.org/u"] * 2)
    again = read_all(tmp_path / "again")
    assert [r["url"] for r in again["origin"]] == ["https://example.org/u"]
    assert sorted(r["visit"] for r in again["origin_visit_status"]) == [1, 2]
