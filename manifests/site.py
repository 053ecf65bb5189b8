"""``site/index.html``: a static page per version where an author types a repository or user name
and sees whether it is in, how many files, which were left out and why, and how to opt out.

One HTML file with its data inline (a file:// page cannot fetch other files), no server: a compact
index of every repository of the version (kept and dropped files, and the drop reasons by count),
sorted so the page finds a name by binary search. About 40 bytes a repository.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds

from pipeline.walk import repo_name

SITE = "site/index.html"
_TEMPLATE = Path(__file__).resolve().parent / "templates" / "site.html"


def _counts(folder: Path, columns: list[str]) -> pa.Table:
    if not folder.is_dir():
        return pa.table({c: pa.array([], pa.string()) for c in columns}).append_column(
            "n", pa.array([], pa.int64()))
    table = ds.dataset(folder, format="parquet").to_table(columns=columns)
    return table.group_by(columns, use_threads=False).aggregate([([], "count_all")]).rename_columns([*columns, "n"])


def site_index(version_dir: Path) -> dict[str, Any]:
    """The page's data: repositories sorted by lowercased name, with kept and dropped counts and the
    reasons (stage/reason) their files were dropped for."""
    kept = _counts(version_dir / "data", ["origin_url"])
    dropped = _counts(version_dir / "dropped", ["origin_url", "stage", "reason"])
    repos: dict[str, dict[str, Any]] = {}
    for url, n in zip(kept["origin_url"].to_pylist(), kept["n"].to_pylist(), strict=True):
        repos.setdefault(url, {"kept": 0, "dropped": {}})["kept"] += n
    for url, stage, reason, n in zip(*(dropped[c].to_pylist() for c in ("origin_url", "stage", "reason", "n")),
                                     strict=True):
        entry = repos.setdefault(url, {"kept": 0, "dropped": {}})
        entry["dropped"][f"{stage}/{reason}"] = entry["dropped"].get(f"{stage}/{reason}", 0) + n
    reasons = sorted({r for e in repos.values() for r in e["dropped"]})
    code = {r: i for i, r in enumerate(reasons)}
    rows = sorted(((repo_name(url).lower(), url, e) for url, e in repos.items()), key=lambda r: (r[0], r[1]))
    return {
        "names": [name for name, _, _ in rows],
        "urls": [url for _, url, _ in rows],
        "kept": [e["kept"] for _, _, e in rows],
        "dropped": [",".join(f"{code[r]}:{n}" for r, n in sorted(e["dropped"].items())) for _, _, e in rows],
        "reasons": reasons,
    }


def write_site(version_dir: Path, manifest: dict[str, Any]) -> Path:
    """Write ``site/index.html`` for the version in ``version_dir``; returns its path."""
    index = site_index(version_dir)
    data = json.dumps({"version": manifest["version"], **index}, separators=(",", ":"), sort_keys=True)
    page = _TEMPLATE.read_text()
    page = page.replace("{{VERSION}}", html.escape(manifest["version"]))
    page = page.replace("{{DATA}}", data.replace("</", "<\\/"))  # never closes the script element early
    target = version_dir / SITE
    target.parent.mkdir(exist_ok=True)
    target.write_text(page)
    return target
