"""What changed between two versions: repositories and files added and removed, and why.

Files are matched by (origin_url, path). A file that left the dataset is explained by the newer
version's ledger (opted out, license changed, a new duplicate, a filter) or, when the newer
version never saw it, by the input (the archive changed, or another ``--as-of`` date). A file
that joined is explained the same way from the older version's ledger. Reads only the key columns
of ``data/`` and ``dropped/`` (pyarrow), never the content.

Written per version: ``changes.json`` (counts by reason, repositories added and removed, config,
software and input changes), ``changes.parquet`` (one row per file added, removed or changed) and
``CHANGELOG.md`` (the same in prose).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from manifests.summary import markdown_table

CHANGES_JSON = "changes.json"
CHANGES_PARQUET = "changes.parquet"
CHANGELOG = "CHANGELOG.md"
KEY = ["origin_url", "path"]

#: The newer ledger's reason → why a file left.
_WHY_REMOVED = {
    "opted_out": "opted_out",
    "non_permissive": "license_changed",
    "no_license": "license_changed",
    "exact_duplicate": "new_duplicate",
    "near_duplicate": "new_duplicate",
}
#: The older ledger's reason → why a file joined.
_WHY_ADDED = {
    "non_permissive": "license_changed",
    "no_license": "license_changed",
    "exact_duplicate": "no_longer_duplicate",
    "near_duplicate": "no_longer_duplicate",
}

CHANGES_SCHEMA = pa.schema([
    pa.field("origin_url", pa.string()),
    pa.field("path", pa.string()),
    pa.field("change", pa.string()),  # added / removed / modified
    pa.field("reason", pa.string()),
    pa.field("blob_id_before", pa.string()),
    pa.field("blob_id_after", pa.string()),
])


def _read(folder: Path, sub: str, columns: list[str]) -> pa.Table:
    path = folder / sub
    if not path.is_dir() or not any(path.rglob("*.parquet")):
        return pa.table({c: pa.array([], pa.string()) for c in columns})
    table = ds.dataset(path, format="parquet").to_table(columns=columns)
    return table.cast(pa.schema([pa.field(c, pa.string()) for c in columns]))


def _anti(left: pa.Table, right: pa.Table) -> pa.Table:
    return left.join(right.select(KEY), keys=KEY, join_type="left anti")


def _reasons(files: pa.Table, ledger: pa.Table, mapping: dict[str, str], absent: str) -> list[str]:
    """Why each of ``files`` changed: its reason in ``ledger`` (mapped), or ``absent``."""
    if files.num_rows == 0:
        return []
    found = files.select(KEY).append_column("i", pa.array(range(files.num_rows), pa.int64())).join(
        ledger.select([*KEY, "reason"]), keys=KEY, join_type="left outer")
    by_row = dict(zip(found["i"].to_pylist(), found["reason"].to_pylist(), strict=True))
    out = []
    for i in range(files.num_rows):
        reason = by_row.get(i)
        out.append(absent if reason is None else mapping.get(reason, f"dropped:{reason}"))
    return out


def _flat(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for k, v in data.items():
            out.update(_flat(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: data}


def _differences(old: dict[str, Any], new: dict[str, Any]) -> dict[str, list[Any]]:
    a, b = _flat(old), _flat(new)
    return {k: [a.get(k), b.get(k)] for k in sorted(a.keys() | b.keys()) if a.get(k) != b.get(k)}


def compare(old_dir: Path, old: dict[str, Any], new_dir: Path, new: dict[str, Any]) -> tuple[dict[str, Any], pa.Table]:
    """The changes from version ``old`` (folder and manifest) to ``new``: the summary and the file rows."""
    cols = [*KEY, "blob_id"]
    old_data, new_data = _read(old_dir, "data", cols), _read(new_dir, "data", cols)
    old_ledger = _read(old_dir, "dropped", [*KEY, "reason"])
    new_ledger = _read(new_dir, "dropped", [*KEY, "reason"])
    removed, added = _anti(old_data, new_data), _anti(new_data, old_data)
    both = old_data.join(new_data.rename_columns([*KEY, "blob_id_after"]), keys=KEY, join_type="inner")
    modified = both.filter(pc.not_equal(both["blob_id"], both["blob_id_after"]))
    removed_why = _reasons(removed, new_ledger, _WHY_REMOVED, "input_changed")
    added_why = _reasons(added, old_ledger, _WHY_ADDED, "input_changed")
    rows = pa.concat_tables([
        pa.table({"origin_url": added["origin_url"], "path": added["path"],
                  "change": pa.array(["added"] * added.num_rows, pa.string()),
                  "reason": pa.array(added_why, pa.string()),
                  "blob_id_before": pa.nulls(added.num_rows, pa.string()), "blob_id_after": added["blob_id"]},
                 schema=CHANGES_SCHEMA),
        pa.table({"origin_url": removed["origin_url"], "path": removed["path"],
                  "change": pa.array(["removed"] * removed.num_rows, pa.string()),
                  "reason": pa.array(removed_why, pa.string()),
                  "blob_id_before": removed["blob_id"], "blob_id_after": pa.nulls(removed.num_rows, pa.string())},
                 schema=CHANGES_SCHEMA),
        pa.table({"origin_url": modified["origin_url"], "path": modified["path"],
                  "change": pa.array(["modified"] * modified.num_rows, pa.string()),
                  "reason": pa.array(["content_changed"] * modified.num_rows, pa.string()),
                  "blob_id_before": modified["blob_id"], "blob_id_after": modified["blob_id_after"]},
                 schema=CHANGES_SCHEMA),
    ]).sort_by([("origin_url", "ascending"), ("path", "ascending"), ("change", "ascending")])
    old_repos = set(pc.unique(old_data["origin_url"]).to_pylist())
    new_repos = set(pc.unique(new_data["origin_url"]).to_pylist())

    def counts(why: list[str]) -> dict[str, int]:
        out: dict[str, int] = {}
        for w in why:
            out[w] = out.get(w, 0) + 1
        return dict(sorted(out.items()))

    summary = {
        "from": old["version"],
        "to": new["version"],
        "repositories": {"added": sorted(new_repos - old_repos), "removed": sorted(old_repos - new_repos)},
        "files": {
            "added": added.num_rows, "removed": removed.num_rows, "modified": modified.num_rows,
            "added_by_reason": counts(added_why), "removed_by_reason": counts(removed_why),
        },
        "input": {
            "fingerprint_changed": old["input"]["fingerprint"] != new["input"]["fingerprint"],
            "as_of": [old["input"].get("as_of"), new["input"].get("as_of")],
        },
        "config": _differences(old["config"], new["config"]),
        "software": _differences(old["software"], new["software"]),
    }
    return summary, rows


def changelog(summary: dict[str, Any]) -> str:
    """``CHANGELOG.md``: the changes from the parent, in prose and tables."""
    if summary is None:
        return "# Changes\n\nFirst version in this output folder: no parent to compare with.\n"
    f = summary["files"]
    lines = [f"# Changes from version {summary['from']} to {summary['to']}", ""]
    lines.append(f"- Files: {f['added']} added, {f['removed']} removed, {f['modified']} with changed content.")
    repos = summary["repositories"]
    lines.append(f"- Repositories: {len(repos['added'])} added, {len(repos['removed'])} removed.")
    i = summary["input"]
    lines.append(f"- Input: {'a different export' if i['fingerprint_changed'] else 'the same export'}"
                 + (f", as of {i['as_of'][1]} (parent: {i['as_of'][0]})" if i["as_of"][0] != i["as_of"][1] else "")
                 + ".")
    for title, key in (("Files added", "added_by_reason"), ("Files removed", "removed_by_reason")):
        if f[key]:
            lines += ["", f"## {title}, by reason", "",
                      markdown_table(["reason", "files"], [[k, str(v)] for k, v in f[key].items()])]
    for title, key in (("Repositories added", "added"), ("Repositories removed", "removed")):
        if repos[key]:
            shown = repos[key][:50]
            more = f"\n\n…and {len(repos[key]) - 50} more (changes.json)" if len(repos[key]) > 50 else ""
            lines += ["", f"## {title}", "", "\n".join(f"- {r}" for r in shown) + more]
    for title, key in (("Config changes", "config"), ("Software changes", "software")):
        if summary[key]:
            rows = [[k, json.dumps(v[0]), json.dumps(v[1])] for k, v in summary[key].items()]
            lines += ["", f"## {title}", "", markdown_table(["setting", "before", "after"], rows)]
    lines += ["", "Every file added, removed or modified is listed in `changes.parquet` (origin_url, path, "
              "change, reason, blob ids).", ""]
    return "\n".join(lines)


def write_changes(folder: Path, summary: dict[str, Any] | None, rows: pa.Table | None) -> list[str]:
    """Write changes.json, changes.parquet and CHANGELOG.md into ``folder``; returns their names."""
    (folder / CHANGES_JSON).write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    pq.write_table(rows if rows is not None else CHANGES_SCHEMA.empty_table(), folder / CHANGES_PARQUET,
                   compression="zstd")
    (folder / CHANGELOG).write_text(changelog(summary))
    return [CHANGES_JSON, CHANGES_PARQUET, CHANGELOG]
