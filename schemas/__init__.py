"""Arrow schemas of the walk output, the dataset rows and the ledger.

Column names follow The Stack v2 wherever it has one, so its users can switch. Columns of stages that
are not built yet are absent (not filled with placeholders); each stage adds its own.
"""

from __future__ import annotations

import json
from importlib import resources

import pyarrow as pa

TIMESTAMP = pa.timestamp("us", tz="UTC")

#: Repository-level provenance carried by every file row (what the walk found for its origin).
PROVENANCE_FIELDS: list[pa.Field] = [
    pa.field("origin_url", pa.string(), nullable=False),
    pa.field("repo_name", pa.string(), nullable=False),
    pa.field("snapshot_id", pa.string(), nullable=False),
    pa.field("revision_id", pa.string(), nullable=False),
    pa.field("directory_id", pa.string(), nullable=False),
    pa.field("branch_name", pa.string(), nullable=False),
    pa.field("visit_date", TIMESTAMP),
    pa.field("revision_date", TIMESTAMP),
    pa.field("committer_date", TIMESTAMP),
]

#: One row per file reached by the walk, before its bytes are fetched.
#: ``status`` is the content table's status ("visible", "hidden", ...), "absent" for a
#: skipped_content row, and null when the export has no row for the file's sha1_git at all.
WALK_SCHEMA = pa.schema(
    [
        pa.field("content_id", pa.string(), nullable=False),
        pa.field("blob_id", pa.string()),
        *PROVENANCE_FIELDS,
        pa.field("path", pa.string(), nullable=False),
        pa.field("path_is_utf8", pa.bool_(), nullable=False),
        pa.field("length", pa.int64()),
        pa.field("status", pa.string()),
        pa.field("skip_reason", pa.string()),
        pa.field("is_symlink", pa.bool_()),
    ]
)

#: What decode gives: the file as text with its provenance, before redaction.
DECODED_SCHEMA = pa.schema(
    [
        pa.field("blob_id", pa.string(), nullable=False),
        pa.field("content_id", pa.string(), nullable=False),
        pa.field("sha256", pa.string(), nullable=False),
        *PROVENANCE_FIELDS,
        pa.field("path", pa.string(), nullable=False),
        pa.field("path_is_utf8", pa.bool_(), nullable=False),
        pa.field("extension", pa.string(), nullable=False),
        pa.field("length_bytes", pa.int64(), nullable=False),
        pa.field("src_encoding", pa.string(), nullable=False),
        pa.field("content", pa.large_string(), nullable=False),
    ]
)

#: What redaction replaced in a file: one entry per kind found, never the values.
PII_TYPE = pa.list_(pa.struct([pa.field("kind", pa.string(), nullable=False), pa.field("count", pa.int32())]))

#: What the language stage adds: the Linguist name (``unknown`` when nothing decided), which rule
#: decided, and go-enry's vendored / generated flags.
LANGUAGE_FIELDS: list[pa.Field] = [
    pa.field("language", pa.string(), nullable=False),
    pa.field("language_source", pa.string(), nullable=False),
    pa.field("is_vendor", pa.bool_(), nullable=False),
    pa.field("is_generated", pa.bool_(), nullable=False),
]

#: What the license stage adds: SPDX ids that apply to the file, and its class.
LICENSE_FIELDS: list[pa.Field] = [
    pa.field("detected_licenses", pa.list_(pa.string()), nullable=False),
    pa.field("license_type", pa.string(), nullable=False),
]


def _before_content(schema: pa.Schema, fields: list[pa.Field]) -> pa.Schema:
    """``schema`` with ``fields`` inserted before its last column, ``content``."""
    return pa.schema([f for f in schema if f.name != "content"] + fields + [schema.field("content")])


#: After the language stage.
LANGUAGE_SCHEMA = _before_content(DECODED_SCHEMA, LANGUAGE_FIELDS)

#: After the license stage (and the filters, which only drop rows).
CLASSIFIED_SCHEMA = _before_content(LANGUAGE_SCHEMA, LICENSE_FIELDS)

def with_pii(schema: pa.Schema) -> pa.Schema:
    """What redaction gives for rows of ``schema``: the same with ``pii`` before ``content``."""
    return _before_content(schema, [pa.field("pii", PII_TYPE, nullable=False)])


#: After redaction.
REDACTED_SCHEMA = with_pii(CLASSIFIED_SCHEMA)

#: The repository's metadata under The Stack v2's names (GH Archive's figures), null where unknown.
METADATA_FIELDS = [
    pa.field("star_events_count", pa.int64()),
    pa.field("fork_events_count", pa.int64()),
    pa.field("gha_created_at", TIMESTAMP),
    pa.field("gha_updated_at", TIMESTAMP),
    pa.field("gha_pushed_at", TIMESTAMP),
    pa.field("gha_license_id", pa.string()),
    pa.field("gha_language", pa.string()),
    pa.field("github_id", pa.int64()),
]

#: What the per-file stages give (after the repository metadata), before dedup adds ``near_dup_cluster``.
ANNOTATED_SCHEMA = _before_content(REDACTED_SCHEMA, METADATA_FIELDS)

#: One row per file in the dataset shards (``sha256`` and ``length_bytes`` are of the content as written).
#: ``near_dup_cluster``: the blob_id of the surviving member of the file's near-duplicate cluster.
ROW_SCHEMA = pa.schema(
    [f for f in ANNOTATED_SCHEMA if f.name != "content"]
    + [pa.field("near_dup_cluster", pa.string()), ANNOTATED_SCHEMA.field("content")]
)

#: One row per file that did not make it into the shards. Never content, never a secret.
LEDGER_SCHEMA = pa.schema(
    [
        pa.field("blob_id", pa.string()),
        pa.field("content_id", pa.string(), nullable=False),
        pa.field("origin_url", pa.string(), nullable=False),
        pa.field("snapshot_id", pa.string(), nullable=False),
        pa.field("revision_id", pa.string(), nullable=False),
        pa.field("path", pa.string(), nullable=False),
        pa.field("length_bytes", pa.int64()),
        pa.field("stage", pa.string(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("detail", pa.string()),
    ]
)


def manifest_json_schema() -> dict:
    """The JSON Schema that every ``manifest.json`` validates against."""
    return json.loads(resources.files(__name__).joinpath("manifest.schema.json").read_text())
