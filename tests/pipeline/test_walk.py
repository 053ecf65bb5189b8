import datetime as dt

import pyarrow as pa

from pipeline import walk

UTC = dt.UTC


def _status(rows: list[tuple[str, int, str, str | None]]) -> pa.Table:
    return pa.table({
        "origin": [r[0] for r in rows],
        "visit": pa.array([r[1] for r in rows], pa.int64()),
        "date": pa.array([dt.datetime(2024, 1, r[1], tzinfo=UTC) for r in rows], pa.timestamp("us", tz="UTC")),
        "status": [r[2] for r in rows],
        "snapshot": [r[3] for r in rows],
    })


def test_latest_full_visit_skips_partial_and_snapshotless_visits() -> None:
    status = _status([
        ("a", 1, "full", "s1"), ("a", 2, "full", "s2"), ("a", 3, "partial", "s3"),
        ("b", 1, "failed", None), ("c", 1, "full", None), ("d", 4, "created", "s9"), ("d", 2, "full", "s4"),
    ])
    picked = walk.latest_full_visits(status).to_pylist()
    assert [(r["origin"], r["visit"], r["snapshot"]) for r in picked] == [("a", 2, "s2"), ("d", 2, "s4")]


def _branches(rows: list[tuple[str, bytes | None, str | None, str | None]]) -> pa.Table:
    return pa.table({
        "origin": [r[0] for r in rows],
        "snapshot": ["snap-" + r[0] for r in rows],
        "name": pa.array([r[1] for r in rows], pa.binary()),
        "target": [r[2] for r in rows],
        "target_type": [r[3] for r in rows],
    })


def test_choose_heads_follows_aliases_and_falls_back_to_default_branches() -> None:
    heads = walk.choose_heads(_branches([
        # HEAD → refs/heads/dev (alias target is the hex of the branch name)
        ("alias", b"HEAD", b"refs/heads/dev".hex(), "alias"),
        ("alias", b"refs/heads/dev", "r1", "revision"),
        ("alias", b"refs/heads/main", "r0", "revision"),
        # no HEAD: main before master
        ("nohead", b"refs/heads/master", "r2", "revision"),
        ("nohead", b"refs/heads/main", "r3", "revision"),
        # only master, pointing at a release
        ("release", b"refs/heads/master", "t1", "release"),
        # detached HEAD straight to a revision
        ("detached", b"HEAD", "r4", "revision"),
        # HEAD → missing branch; falls back to master
        ("dangling", b"HEAD", b"refs/heads/gone".hex(), "alias"),
        ("dangling", b"refs/heads/master", "r5", "revision"),
        # HEAD → missing branch, nothing to fall back on
        ("broken", b"HEAD", b"refs/heads/gone".hex(), "alias"),
        ("broken", b"refs/heads/feature", "r6", "revision"),
        # only other branches
        ("other", b"refs/heads/feature", "r7", "revision"),
        # snapshot without branches (left join gives one null row)
        ("empty", None, None, None),
        # a branch on a directory is not something we walk
        ("dir", b"HEAD", "d1", "directory"),
    ]), default_branches=("refs/heads/main", "refs/heads/master"))
    got = {r["origin"]: (r["branch_name"], r["target"], r["problem"]) for r in heads.to_pylist()}
    assert got == {
        "alias": ("refs/heads/dev", "r1", None),
        "nohead": ("refs/heads/main", "r3", None),
        "release": ("refs/heads/master", "t1", None),
        "detached": ("HEAD", "r4", None),
        "dangling": ("refs/heads/master", "r5", None),
        "broken": (None, None, "dangling_branch"),
        "other": (None, None, "no_head"),
        "empty": (None, None, "empty_snapshot"),
        "dir": ("HEAD", "d1", "unsupported_target"),
    }


def test_alias_cycles_do_not_hang() -> None:
    heads = walk.choose_heads(_branches([
        ("loop", b"HEAD", b"refs/heads/a".hex(), "alias"),
        ("loop", b"refs/heads/a", b"HEAD".hex(), "alias"),
    ]), default_branches=())
    assert heads["problem"].to_pylist() == ["dangling_branch"]


def test_resolve_revisions_through_releases() -> None:
    heads = pa.table({
        "origin": ["rev", "rel", "rel-missing", "rel-of-dir"],
        "snapshot": ["s"] * 4,
        "branch_name": ["b"] * 4,
        "target": ["r1", "t1", "t2", "t3"],
        "target_type": ["revision", "release", "release", "release"],
        "problem": pa.nulls(4, pa.string()),
        "release_id": [None, "t1", None, "t3"],
        "release_target": [None, "r2", None, "d9"],
        "release_target_type": [None, "revision", None, "directory"],
    })
    out = walk.resolve_revisions(heads).to_pylist()
    assert [(r["revision_id"], r["problem"]) for r in out] == [
        ("r1", None), ("r2", None), (None, "release_missing"), (None, "unsupported_target")
    ]


def test_expand_level_builds_paths_from_bytes() -> None:
    joined = pa.table({
        "origin": ["o", "o"],
        "prefix": pa.array([b"", b"/src"], pa.binary()),
        "name": pa.array([b"README", b"caf\xe9.py"], pa.binary()),
        "type": ["file", "file"],
        "target": ["t1", "t2"],
        "perms": pa.array([0o100644, 0o120000], pa.int32()),
    })
    level = walk.expand_level(joined)
    assert level["path"].to_pylist() == [b"/README", b"/src/caf\xe9.py"]
    assert level["perms"].to_pylist() == [0o100644, 0o120000]


def test_file_rows_keep_non_utf8_names_with_a_flag() -> None:
    n = 3
    files = pa.table({
        "origin": ["https://github.com/o/r"] * n,
        "target": ["g1", "g2", "g3"],
        "path": pa.array([b"/ok.py", b"/caf\xe9.py", b"/gone"], pa.binary()),
        "sha1": ["s1", "s2", None],
        "length": pa.array([1, 2, None], pa.int64()),
        "status": ["visible", "visible", None],
        "skipped_sha1": [None, None, "s3"],
        "skipped_length": pa.array([None, None, 7], pa.int64()),
        "skipped_status": [None, None, "absent"],
        "skipped_reason": [None, None, "Content too large"],
        "snapshot": ["sn"] * n, "branch_name": ["HEAD"] * n, "revision_id": ["rv"] * n, "directory_id": ["d"] * n,
        "revision_date": pa.nulls(n, pa.timestamp("us", tz="UTC")),
        "committer_date": pa.nulls(n, pa.timestamp("us", tz="UTC")),
        "visit_date": pa.nulls(n, pa.timestamp("us", tz="UTC")),
        "perms": pa.array([0o100644, 0o120000, None], pa.int32()),
    })
    rows = walk.file_rows(files).to_pylist()
    assert [r["is_symlink"] for r in rows] == [False, True, False]
    assert [r["path"] for r in rows] == ["/ok.py", "/caf\\xe9.py", "/gone"]
    assert [r["path_is_utf8"] for r in rows] == [True, False, True]
    assert [(r["blob_id"], r["status"], r["length"]) for r in rows] == [
        ("s1", "visible", 1), ("s2", "visible", 2), ("s3", "absent", 7)
    ]
    assert rows[0]["repo_name"] == "o/r"


def test_repo_name() -> None:
    assert walk.repo_name("https://github.com/bigcode-project/the-stack-v2") == "bigcode-project/the-stack-v2"
    assert walk.repo_name("https://github.com/o/r.git") == "o/r"
    assert walk.repo_name("https://gitlab.com/group/sub/project.git") == "gitlab.com/group/sub/project"
    assert walk.repo_name("https://example.org/swh-graph/sample") == "example.org/swh-graph/sample"
    assert walk.repo_name("file:///tmp/repo") == "/tmp/repo"
