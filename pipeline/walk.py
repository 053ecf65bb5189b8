"""The walk of a Software Heritage export, as pure functions over pyarrow tables.

origin → latest full visit → snapshot → HEAD (or a default branch) → release → revision → root
directory → directory entries, level by level → files. The graph module runs these per partition
between its joins; nothing here holds a whole table of the export.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.compute as pc

from manifests.reports import WalkReport
from schemas import TIMESTAMP, WALK_SCHEMA

if TYPE_CHECKING:  # the config pulls in every stage; the walk's functions need none of them
    from pipeline.config import Config
    from pipeline.orc import Export

#: Why an origin yields no files: recorded per origin in the manifest (origins are not files).
ORIGIN_PROBLEMS = (
    "no_full_visit",
    "empty_snapshot",
    "no_head",
    "dangling_branch",
    "unsupported_target",
    "release_missing",
    "revision_missing",
    "directory_missing",
)
#: The column holding an origin URL in each table that has one.
URL_COLUMNS = {"origin": "url", "origin_visit": "origin", "origin_visit_status": "origin"}
#: ``scheme://userinfo@``: the userinfo (``user:password``, or a token alone, ``https://<token>@github.com``)
#: is everything between ``://`` and the last ``@`` before the host's end (RE2 syntax: run by Arrow).
USERINFO = r"^([A-Za-z][A-Za-z0-9+.\-]*://)[^/?#\s]*@"
#: ``perms`` of a symbolic link in a directory entry (git's mode 120000).
SYMLINK_PERMS = 0o120000

VISITS_SCHEMA = pa.schema(
    [
        pa.field("origin", pa.string()),
        pa.field("visit", pa.int64()),
        pa.field("status_date", TIMESTAMP),
        pa.field("snapshot", pa.string()),
    ]
)

HEADS_SCHEMA = pa.schema(
    [
        pa.field("origin", pa.string()),
        pa.field("snapshot", pa.string()),
        pa.field("branch_name", pa.string()),
        pa.field("target", pa.string()),
        pa.field("target_type", pa.string()),
        pa.field("problem", pa.string()),
    ]
)

LEVEL_SCHEMA = pa.schema(
    [
        pa.field("origin", pa.string()),
        pa.field("type", pa.string()),
        pa.field("target", pa.string()),
        pa.field("path", pa.binary()),
        pa.field("perms", pa.int32()),
    ]
)

_MAX_ALIAS_DEPTH = 8


class ExportWalk:
    """The walk of one export, as an engine runs it (``files()``: one WALK_SCHEMA row per file), and
    what it counts (``report``)."""

    def __init__(self, export: Export, config: Config, log: Callable[[str], None],
                 as_of: dt.datetime | None = None) -> None:
        self.export = export
        self.config = config
        self.log = log
        self.as_of = as_of
        self.report = WalkReport()

    def count_origins(self, n_origins: int, problems: Mapping[str | None, int], with_credentials: int) -> None:
        """Record the origins: how many, how many have a tree to walk (``problems[None]``), why the
        others have none (an origin with no full visit has no row in ``problems``), how many URLs held
        credentials; and say it in the log."""
        counts = {k: v for k, v in problems.items() if k is not None}
        walked = problems.get(None, 0)
        counts["no_full_visit"] = max(0, n_origins - walked - sum(counts.values()))
        self.report.origins, self.report.origins_walked = n_origins, walked
        self.report.origin_problems = {k: counts.get(k, 0) for k in ORIGIN_PROBLEMS}
        self.report.origins_with_credentials = with_credentials
        self.log(f"walk: {n_origins} origins, {walked} with a tree to walk")
        if with_credentials:
            self.log(f"walk: {with_credentials} origin URL(s) held credentials: their userinfo was removed")


def strip_credentials(table: pa.Table, name: str) -> pa.Table:
    """Table ``name`` of the export with the userinfo removed from its origin URLs.

    ``https://user:token@host/repo`` becomes ``https://host/repo``, so no credential reaches a shard,
    the ledger, the manifest, the site or a log, and the origin is the same as the one without
    credentials (``repo_name``, opt-out and lookup match it). The ``origin`` table gains
    ``had_credentials``: whether the URL had a userinfo (the walk counts them; never the value).
    """
    column = URL_COLUMNS.get(name)
    if column is None or column not in table.column_names:
        return table
    urls = table[column]
    clean = pc.replace_substring_regex(urls, pattern=USERINFO, replacement=r"\1", max_replacements=1)
    table = table.set_column(table.schema.get_field_index(column), table.schema.field(column), clean)
    if name == "origin":
        changed = pc.fill_null(pc.not_equal(urls, clean), False)
        table = table.append_column(pa.field("had_credentials", pa.bool_()), changed)
    return table


def strip_url_credentials(url: str) -> str:
    """``url`` without its userinfo (``strip_credentials`` for one URL)."""
    return re.sub(USERINFO, r"\1", url, count=1)


def latest_full_visits(status: pa.Table, as_of: dt.datetime | None = None) -> pa.Table:
    """Per origin, the latest visit whose status is ``full`` and that has a snapshot (with
    ``as_of``: among the statuses dated at or before it).

    ``status`` has the origin_visit_status columns origin, visit, date, status, snapshot; all rows
    of one origin must be in the same table (the graph shuffles on origin first).
    """
    full = status.filter(pc.and_(pc.equal(status["status"], "full"), pc.is_valid(status["snapshot"])))
    if as_of is not None:
        full = full.filter(pc.less_equal(full["date"], pa.scalar(as_of, full.schema.field("date").type)))
    full = full.sort_by([("origin", "ascending"), ("visit", "ascending"), ("date", "ascending")])
    origins = full["origin"].to_pylist()
    last = [i for i in range(len(origins)) if i + 1 == len(origins) or origins[i + 1] != origins[i]]
    picked = full.take(pa.array(last, pa.int64()))
    return pa.table(
        {
            "origin": picked["origin"],
            "visit": picked["visit"],
            "status_date": picked["date"],
            "snapshot": picked["snapshot"],
        },
        schema=VISITS_SCHEMA,
    )


def choose_heads(branches: pa.Table, default_branches: Sequence[str]) -> pa.Table:
    """Per origin, the branch whose tree is walked.

    ``branches``: one row per (origin, snapshot, branch) with columns origin, snapshot, name (bytes),
    target, target_type; a snapshot with no branch appears once with a null name. ``HEAD`` is
    followed when present (an alias's target is the hex of the branch name it points to), else the
    first of ``default_branches`` that exists. Origins that cannot be walked get a ``problem``.
    """
    rows: dict[str, dict[str, object]] = {}
    by_origin: dict[str, list[int]] = {}
    origins = branches["origin"].to_pylist()
    for i, origin in enumerate(origins):
        by_origin.setdefault(origin, []).append(i)
    names = branches["name"].to_pylist()
    targets = branches["target"].to_pylist()
    types = branches["target_type"].to_pylist()
    snapshots = branches["snapshot"].to_pylist()
    for origin in sorted(by_origin):
        idx = by_origin[origin]
        table = {names[i]: (targets[i], types[i]) for i in idx if names[i] is not None}
        row: dict[str, object] = {
            "origin": origin,
            "snapshot": snapshots[idx[0]],
            "branch_name": None,
            "target": None,
            "target_type": None,
            "problem": None,
        }
        if not table:
            row["problem"] = "empty_snapshot"
        else:
            name, problem = _resolve_head(table, default_branches)
            if name is None:
                row["problem"] = problem
            else:
                target, target_type = table[name]
                row.update(branch_name=_decode(name), target=target, target_type=target_type)
                if target_type not in ("revision", "release"):
                    row["problem"] = "unsupported_target"
        rows[origin] = row
    ordered = [rows[o] for o in sorted(rows)]
    return pa.Table.from_pylist(ordered, schema=HEADS_SCHEMA)


def _resolve_head(
    table: dict[bytes, tuple[str | None, str | None]], default_branches: Sequence[str]
) -> tuple[bytes | None, str]:
    """The name of the branch to walk, following aliases, or None and the problem."""
    candidates: list[bytes] = [b"HEAD", *(b.encode() for b in default_branches)]
    problem = "no_head"
    for name in candidates:
        seen = 0
        while name in table and table[name][1] == "alias" and seen < _MAX_ALIAS_DEPTH:
            target = table[name][0]
            name = bytes.fromhex(target) if target else b""
            seen += 1
        if name in table and table[name][1] != "alias" and table[name][0] is not None:
            return name, ""
        if seen:
            problem = "dangling_branch"
    return None, problem


def expand_level(frontier_entries: pa.Table) -> pa.Table:
    """One level of the tree walk.

    ``frontier_entries``: the frontier (origin, prefix) joined with its directories' entries
    (name, type, target). Returns one row per entry with its full path (``prefix/name``).
    """
    path = pc.binary_join_element_wise(
        frontier_entries["prefix"], frontier_entries["name"], pa.scalar(b"/", pa.binary())
    )
    return pa.table(
        {
            "origin": frontier_entries["origin"],
            "type": frontier_entries["type"],
            "target": frontier_entries["target"],
            "path": path,
            "perms": frontier_entries["perms"],
        },
        schema=LEVEL_SCHEMA,
    )


def file_rows(files: pa.Table) -> pa.Table:
    """Files joined with content, skipped_content and provenance, as WALK_SCHEMA rows.

    Paths are bytes in the archive; a path that is not UTF-8 is decoded with backslash escapes
    (``\\xff``) and flagged ``path_is_utf8 = false``, so nothing is lost and nothing is guessed.
    """
    decoded = [_decode(p) for p in files["path"].to_pylist()]
    utf8 = [_is_utf8(p) for p in files["path"].to_pylist()]
    in_content = pc.is_valid(files["sha1"])
    in_skipped = pc.is_valid(files["skipped_status"])
    status = pc.if_else(in_content, files["status"], pc.if_else(in_skipped, "absent", None))
    blob_id = pc.if_else(in_content, files["sha1"], files["skipped_sha1"])
    length = pc.if_else(in_content, files["length"], files["skipped_length"])
    columns = {
        "content_id": files["target"],
        "blob_id": blob_id,
        "origin_url": files["origin"],
        "repo_name": pa.array([repo_name(u) for u in files["origin"].to_pylist()], pa.string()),
        "snapshot_id": files["snapshot"],
        "revision_id": files["revision_id"],
        "directory_id": files["directory_id"],
        "branch_name": files["branch_name"],
        "visit_date": files["visit_date"],
        "revision_date": files["revision_date"],
        "committer_date": files["committer_date"],
        "path": pa.array(decoded, pa.string()),
        "path_is_utf8": pa.array(utf8, pa.bool_()),
        "length": length,
        "status": status,
        "skip_reason": files["skipped_reason"],
        "is_symlink": pc.fill_null(pc.equal(files["perms"], SYMLINK_PERMS), False),
    }
    return pa.table({f.name: columns[f.name] for f in WALK_SCHEMA}, schema=WALK_SCHEMA)


#: Forges whose repositories are exactly ``owner/name`` (GitLab has nested groups: its whole path is kept).
_OWNER_NAME_FORGES = re.compile(r"^(www\.)?(github\.com|bitbucket\.org|codeberg\.org)$")


def repo_name(url: str) -> str:
    """``owner/name`` for forge URLs, else the URL without its scheme."""
    parts = urlsplit(url)
    path = parts.path.strip("/")
    if path.endswith(".git"):
        path = path[:-4]
    if _OWNER_NAME_FORGES.match(parts.netloc.lower()) and path.count("/") >= 1:
        return "/".join(path.split("/")[:2])
    return (parts.netloc + "/" + path).strip("/") if parts.netloc else url.split("://", 1)[-1]


def _decode(name: bytes) -> str:
    return name.decode("utf-8", errors="backslashreplace")


def _is_utf8(name: bytes) -> bool:
    try:
        name.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


FRONTIER_SCHEMA = pa.schema(
    [pa.field("origin", pa.string()), pa.field("dir", pa.string()), pa.field("prefix", pa.binary())]
)


def root_frontier(roots: pa.Table) -> pa.Table:
    """The walk's first frontier: each origin's root directory, with an empty path prefix."""
    return pa.table(
        {
            "origin": roots["origin"],
            "dir": roots["directory_id"],
            "prefix": pa.array([b""] * roots.num_rows, pa.binary()),
        },
        schema=FRONTIER_SCHEMA,
    )


def next_frontier(level: pa.Table) -> pa.Table:
    """The subdirectories found at one level, as the next frontier."""
    dirs = level.filter(pc.equal(level["type"], "dir"))
    return pa.table(
        {"origin": dirs["origin"], "dir": dirs["target"], "prefix": dirs["path"]}, schema=FRONTIER_SCHEMA
    )


def resolve_revisions(heads: pa.Table) -> pa.Table:
    """Heads joined with the release table (``release_target``, ``release_target_type``): the revision.

    A branch on a release walks the release's target revision; a release of anything else, or
    a release missing from the export, is an origin problem.
    """
    is_release = pc.equal(heads["target_type"], "release")
    found = pc.is_valid(heads["release_target_type"])
    rel_ok = pc.fill_null(pc.equal(heads["release_target_type"], "revision"), False)
    revision = pc.if_else(is_release, pc.if_else(rel_ok, heads["release_target"], None), heads["target"])
    unset = pc.is_null(heads["problem"])
    problem = pc.if_else(pc.and_(unset, pc.and_(is_release, pc.invert(found))), "release_missing", heads["problem"])
    not_rev = pc.and_(is_release, pc.and_(found, pc.invert(rel_ok)))
    problem = pc.if_else(pc.and_(unset, not_rev), "unsupported_target", problem)
    return pa.table(
        {
            "origin": heads["origin"],
            "snapshot": heads["snapshot"],
            "branch_name": heads["branch_name"],
            "revision_id": revision,
            "problem": problem,
        }
    )


def check_revisions(roots: pa.Table) -> pa.Table:
    """Origins whose revision is not in the export get the ``revision_missing`` problem."""
    missing = pc.and_(pc.is_null(roots["problem"]), pc.is_null(roots["directory_id"]))
    return roots.set_column(
        roots.schema.get_field_index("problem"),
        "problem",
        pc.if_else(missing, "revision_missing", roots["problem"]),
    )
