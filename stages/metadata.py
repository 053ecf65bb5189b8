"""Repository metadata: stars, forks, dates, license and language per repository (what GH Archive
gives), joined onto every file under The Stack v2's column names, null where unknown.

The file (``--repo-metadata`` / ``[repo_metadata] file``) is Parquet, CSV or JSON Lines, one row per
repository, keyed by ``origin_url`` or ``repo_name`` (``owner/name``); both are matched as the
opt-out registry matches them (lowercase, no trailing ``/`` or ``.git``). Accepted column names: The
Stack v2's (``star_events_count``, ``fork_events_count``, ``gha_created_at``, ``gha_updated_at``,
``gha_pushed_at``, ``gha_license_id``, ``gha_language``, ``github_id``) or the plain ones
(``stars``, ``forks``, ``created_at``, ``updated_at``, ``pushed_at``, ``license``, ``language``,
``id``). Exact and near dedup read ``star_events_count`` and ``fork_events_count``: with metadata,
the copy in the more starred, then more forked, repository survives.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.errors import PipelineError
from pipeline.optout import normalize_url
from pipeline.table_files import read_table_file
from schemas import METADATA_FIELDS
from stages.base import RowStage, StageResult, empty_ledger

ALIASES = {
    "stars": "star_events_count", "forks": "fork_events_count", "created_at": "gha_created_at",
    "updated_at": "gha_updated_at", "pushed_at": "gha_pushed_at", "license": "gha_license_id",
    "language": "gha_language", "id": "github_id",
}
_KEYS = ("origin_url", "repo_name")


@dataclass(frozen=True)
class RepoMetadataConfig:
    """The ``[repo_metadata]`` section: the metadata file (``--repo-metadata`` overrides it)."""

    file: str = ""


def read_metadata(path: str | Path) -> pa.Table:
    """The metadata file as ``key`` (normalised origin URL or ``owner/name``) + METADATA_FIELDS,
    sorted by key; PipelineError naming the file on anything a user must fix."""
    path = Path(path)
    table = read_table_file(path, ("parquet", "csv", "jsonl"), "repository metadata")
    table = table.rename_columns([ALIASES.get(c, c) for c in table.column_names])
    key_column = next((k for k in _KEYS if k in table.column_names), None)
    if key_column is None:
        raise PipelineError(f"{path}: repository metadata needs an origin_url or a repo_name column")
    keys = pa.array([normalize_url(str(v)) if v is not None else None for v in table[key_column].to_pylist()],
                    pa.string())
    columns: dict[str, Any] = {"key": keys}
    for f in METADATA_FIELDS:
        if f.name not in table.column_names:
            columns[f.name] = pa.nulls(table.num_rows, f.type)
            continue
        try:
            columns[f.name] = table[f.name].cast(f.type)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
            raise PipelineError(f"{path}: column {f.name} is not {f.type} ({e})") from e
    out = pa.table(columns).filter(pc.is_valid(keys)).sort_by([("key", "ascending")])
    counts = pc.value_counts(out["key"])
    repeated = pc.filter(counts.field("values"), pc.greater(counts.field("counts"), 1))
    if len(repeated):
        raise PipelineError(f"{path}: repository {repeated[0].as_py()!r} appears more than once")
    return out


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class RepoMetadata(RowStage):
    """Adds METADATA_FIELDS before ``content``: the row's repository's, matched by origin URL, then by
    ``owner/name``; null without a file or a match. ``sha256``: the file's, so that a changed file is a
    different stage (and a different version). Drops nothing. The resource is the file's rows and an
    index by key (~150 bytes a repository per worker process)."""

    file: str = ""
    sha256: str = ""
    name: ClassVar[str] = "repo_metadata"
    reads_content: ClassVar[bool] = False

    def setup(self) -> tuple[pa.Table, dict[str, int]] | None:
        if not self.file:
            return None
        table = read_metadata(self.file)
        return table, {k: i for i, k in enumerate(table["key"].to_pylist())}

    def process(self, table: pa.Table, resource: tuple[pa.Table, dict[str, int]] | None) -> StageResult:
        n = table.num_rows
        if resource is None:
            found: list[int | None] = [None] * n
            metadata = pa.table({f.name: pa.nulls(0, f.type) for f in METADATA_FIELDS})
        else:
            metadata, index = resource
            urls, names = table["origin_url"].to_pylist(), table["repo_name"].to_pylist()
            found = [index.get(normalize_url(u)) if u else None for u in urls]
            found = [f if f is not None or not r else index.get(normalize_url(r)) for f, r in zip(found, names,
                                                                                                   strict=True)]
        take = pa.array(found, pa.int64())
        at = table.schema.get_field_index("content")
        out = table
        for offset, f in enumerate(METADATA_FIELDS):
            column = metadata[f.name].take(take) if len(metadata) else pa.nulls(n, f.type)
            out = out.add_column(at + offset, f, column)
        matched = sum(1 for f in found if f is not None)
        return StageResult(out, empty_ledger(), {"in": n, "kept": n, "files_with_metadata": matched})
