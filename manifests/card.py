"""The dataset card: ``README.md`` of a version, everything someone deciding to train on it needs."""

from __future__ import annotations

from typing import Any

from manifests.summary import human_bytes, language_rows, markdown_table, stage_rows


def dataset_card(manifest: dict[str, Any]) -> str:
    """The card's Markdown text, from the manifest (without its ``files`` and ``created_at``)."""
    t = manifest["totals"]
    walk = manifest["walk"]
    version = manifest["version"]
    problems = ", ".join(f"{k}: {v}" for k, v in walk["origin_problems"].items() if v) or "none"
    return f"""# Source-code dataset, version {version}

Built by `pipeline` {manifest['software']['pipeline']} from the Software Heritage export
`{manifest['input']['export']}` (fingerprint `{manifest['input']['fingerprint']['sha256']}`),
config sha256 `{manifest['config_sha256']}`.

## Totals
- {t['files_kept']} files kept, {human_bytes(t['content_bytes'])} of UTF-8 text, in {len(manifest['shards'])} \
Parquet shards ({human_bytes(t['shard_bytes'])}, zstd).
- {t['files_in']} files found by the walk; {t['files_dropped']} dropped, each listed in `dropped/` with its reason.
- {walk['origins']} origins in the export, {walk['origins_walked']} walked (not walked: {problems}).

## Languages
{markdown_table(["language", "files", "bytes"], language_rows(manifest))}

## Personal data and secrets
{_redaction_summary(manifest)}

## What was dropped, by stage
{markdown_table(["stage", "in", "kept", "dropped by reason"], stage_rows(manifest))}

## Load
```python
import pyarrow.dataset as ds
table = ds.dataset("v{version}/data", format="parquet").to_table()
```
```sql
-- DuckDB
SELECT repo_name, path, length_bytes FROM read_parquet('v{version}/data/*/*.parquet') LIMIT 10;
```
```python
from datasets import load_dataset
dataset = load_dataset("parquet", data_files="v{version}/data/*/*.parquet", split="train")
```

## Verify
```
sha256sum -c SHA256SUMS          # in this folder
python -m pipeline verify {version}
```
`manifest.json` lists every shard with its rows, bytes and SHA-256, the full config and the
software versions that built it.
"""


def _redaction_summary(manifest: dict[str, Any]) -> str:
    stage = next((s for s in manifest["stages"] if s["name"] == "redact"), None)
    if stage is None:
        return "Not redacted: this version was built without the redaction stage."
    c = stage["counters"]
    return (
        f"Replaced in {c.get('files_with_pii', 0)} files: {c.get('pii_email', 0)} email addresses (`<EMAIL>`), "
        f"{c.get('pii_key', 0)} keys and tokens (`<KEY>`), {c.get('pii_password', 0)} passwords (`<PASSWORD>`), "
        f"{c.get('pii_ip_address', 0)} public IP addresses (by private ones). Per file counts are in the `pii` "
        f"column; files whose redaction failed are in `dropped/` (`redaction_failed`), never in `data/`."
    )
