"""``lookup``: is a repository (or a file) in a version, and if not, why.

A target is a repository URL, ``owner/name``, ``owner/*``, a blob sha1 or a path glob (leading ``/``).
For each version it reads only the columns it needs of the data shards and of the ledger, with the
condition pushed into the scan (pyarrow.dataset), and says which files are in, which are out and
why (stage, reason, detail), and whether an opt-out entry applies.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from pipeline.errors import PipelineError
from pipeline.optout import normalize_name, normalize_url
from pipeline.walk import repo_name

URL, REPO, OWNER, BLOB, PATH = "url", "repo", "owner", "blob", "path"
DATA_COLUMNS = ["origin_url", "repo_name", "path", "blob_id", "language", "license_type", "length_bytes"]
LEDGER_COLUMNS = ["origin_url", "path", "blob_id", "stage", "reason", "detail"]
_SHA1 = re.compile(r"^[0-9a-fA-F]{40}$")
_OWNER = re.compile(r"^[^/\s*?\[]+/\*$")
_NAME = re.compile(r"^[^/\s*?\[]+/[^/\s*?\[]+$")


@dataclass(frozen=True)
class Target:
    """What to look for: ``kind`` (url, repo, owner, blob, path) and its normalised ``value``."""

    kind: str
    value: str
    text: str


def parse_target(text: str) -> Target:
    """The target ``text`` names; PipelineError says the forms accepted."""
    t = text.strip()
    if _SHA1.match(t):
        return Target(BLOB, t.lower(), t)
    if "://" in t:
        return Target(URL, normalize_url(t), t)
    if t.startswith("/"):
        return Target(PATH, t, t)
    if _OWNER.match(t):
        return Target(OWNER, t.split("/")[0].lower(), t)
    if _NAME.match(t.rstrip("/")):
        return Target(REPO, normalize_name(t), t)
    raise PipelineError(f"{text!r}: not a lookup target; give a repository URL, owner/name, owner/*, "
                        "a blob sha1 (40 hex digits) or a path glob starting with /")


def _like(glob: str) -> str:
    """A path glob (``*``, ``?``) as a SQL LIKE pattern."""
    escaped = glob.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


def _normalised_url(column: str) -> pc.Expression:
    url = pc.utf8_lower(pc.utf8_rtrim(pc.field(column), characters="/"))
    return pc.replace_substring_regex(url, pattern=r"\.git$", replacement="")


def data_filter(target: Target) -> pc.Expression:
    """The scan condition on the data shards."""
    if target.kind == BLOB:
        return pc.field("blob_id") == target.value
    if target.kind == PATH:
        return pc.match_like(pc.field("path"), _like(target.value))
    if target.kind == URL:
        return _normalised_url("origin_url") == target.value
    name = pc.utf8_lower(pc.field("repo_name"))
    if target.kind == REPO:
        return name == target.value
    return pc.starts_with(name, target.value + "/")


def ledger_filter(target: Target) -> pc.Expression:
    """The scan condition on the ledger (which has no ``repo_name``: a repository or owner is looked
    for in the origin URL, and the matches checked exactly afterwards)."""
    if target.kind in (BLOB, PATH, URL):
        return data_filter(target)
    needle = "/" + target.value + ("/" if target.kind == OWNER else "")
    return pc.match_substring(pc.field("origin_url"), needle, ignore_case=True)


def _ledger_matches(table: pa.Table, target: Target) -> pa.Table:
    if target.kind not in (REPO, OWNER) or table.num_rows == 0:
        return table
    names = [repo_name(u).lower() for u in table["origin_url"].to_pylist()]
    keep = [n == target.value if target.kind == REPO else n.startswith(target.value + "/") for n in names]
    return table.filter(pa.array(keep))


@dataclass
class VersionAnswer:
    """One version's answer: the files in and out, and the opt-out entries that removed some."""

    version: str
    kept: list[dict[str, Any]] = field(default_factory=list)
    dropped: list[dict[str, Any]] = field(default_factory=list)
    opted_out: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        reasons: dict[str, int] = {}
        for row in self.dropped:
            key = f"{row['stage']}/{row['reason']}"
            reasons[key] = reasons.get(key, 0) + 1
        languages: dict[str, int] = {}
        for row in self.kept:
            languages[row["language"]] = languages.get(row["language"], 0) + 1
        repositories = sorted({r["origin_url"] for r in self.kept} | {r["origin_url"] for r in self.dropped})
        return {"version": self.version, "files_in": len(self.kept), "files_out": len(self.dropped),
                "repositories": repositories, "languages": dict(sorted(languages.items())),
                "out_by_reason": dict(sorted(reasons.items())), "opt_out": self.opted_out}


def _scan(folder: Path, columns: list[str], condition: pc.Expression) -> pa.Table:
    if not folder.is_dir():
        return pa.table({c: pa.array([], pa.string()) for c in columns})
    dataset = ds.dataset(folder, format="parquet")
    present = [c for c in columns if c in dataset.schema.names]
    return dataset.to_table(columns=present, filter=condition)


def lookup_version(version_dir: Path, version: str, target: Target) -> VersionAnswer:
    """The files of ``target`` in one version's data shards and ledger."""
    kept = _scan(version_dir / "data", DATA_COLUMNS, data_filter(target))
    dropped = _ledger_matches(_scan(version_dir / "dropped", LEDGER_COLUMNS, ledger_filter(target)), target)
    order = [("origin_url", "ascending"), ("path", "ascending")]
    answer = VersionAnswer(version, kept.sort_by(order).to_pylist(),
                           dropped.sort_by(order + [("stage", "ascending")]).to_pylist())
    answer.opted_out = sorted({r["detail"] for r in answer.dropped if r["reason"] == "opted_out" and r["detail"]})
    return answer


def render(answers: list[VersionAnswer], target: Target, limit: int) -> str:
    """The answers as text for a terminal."""
    if not answers:
        return "no finished version in this output folder"
    lines = []
    for answer in answers:
        s = answer.summary()
        lines.append(f"v{answer.version}: {s['files_in']} file(s) in, {s['files_out']} out"
                     + (f" ({len(s['repositories'])} repositories)" if target.kind in (OWNER, PATH, BLOB) else ""))
        if s["languages"]:
            lines.append("  in:  " + ", ".join(f"{k} {v}" for k, v in s["languages"].items()))
        if s["out_by_reason"]:
            lines.append("  out: " + ", ".join(f"{k} {v}" for k, v in s["out_by_reason"].items()))
        if s["opt_out"]:
            lines.append("  opt-out entries that apply: " + "; ".join(s["opt_out"]))
        elif not s["files_in"] and not s["files_out"]:
            lines.append("  not in this version, and not in its ledger: the repository was not in the input")
        rows = [("in ", r["origin_url"], r["path"], r["language"]) for r in answer.kept]
        rows += [("out", r["origin_url"], r["path"], f"{r['stage']} {r['reason']}"
                  + (f" ({r['detail']})" if r["detail"] else "")) for r in answer.dropped]
        for kind, url, path, what in rows[:limit]:
            lines.append(f"  {kind} {url}{path}  {what}")
        if len(rows) > limit:
            lines.append(f"  ... {len(rows) - limit} more (--limit, or --json for all)")
    return "\n".join(lines)
