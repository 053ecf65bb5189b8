"""The dataset card: ``README.md`` of a version, everything someone deciding to train on it needs."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from manifests.summary import human_bytes, language_rows, markdown_table, stage_rows

CHART = "languages.svg"
_CHART_LANGUAGES = 25  # the largest ones; the table has them all


def language_chart(manifest: dict[str, Any], path: Path) -> bool:
    """A bar chart (SVG, written here: no plotting library to import) of files and bytes per language;
    False (no file) when nothing was kept. The same manifest gives the same bytes."""
    langs = manifest["languages"]
    if not langs:
        return False
    order = sorted(langs, key=lambda k: (-langs[k]["bytes"], k))[:_CHART_LANGUAGES]
    label_w, panel_w, row_h, top, gap = 170, 300, 22, 48, 40
    width = label_w + 2 * panel_w + gap + 20
    height = top + row_h * len(order) + 30
    title = (f"Version {manifest['version']}: files and bytes per language"
             + (f" (largest {_CHART_LANGUAGES})" if len(langs) > _CHART_LANGUAGES else ""))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{width / 2:.0f}" y="20" text-anchor="middle" font-size="15">{escape(title)}</text>',
    ]
    panels = (("files", "files", "#4878a8", lambda v: f"{v:,}"),
              ("bytes", "UTF-8 text", "#e07b39", human_bytes))
    for p, (key, name, colour, shown) in enumerate(panels):
        x0 = label_w + p * (panel_w + gap)
        most = max(langs[k][key] for k in order) or 1
        parts.append(f'<text x="{x0 + panel_w / 2:.0f}" y="{top - 10}" text-anchor="middle">{name}</text>')
        for i, language in enumerate(order):
            value = langs[language][key]
            y = top + i * row_h
            bar = max(1.0, (panel_w - 70) * value / most)
            parts.append(f'<rect class="{key}" x="{x0}" y="{y + 3}" width="{bar:.1f}" height="{row_h - 6}" '
                         f'fill="{colour}"><title>{escape(language)}: {shown(value)}</title></rect>')
            parts.append(f'<text x="{x0 + bar + 4:.1f}" y="{y + row_h - 7}">{shown(value)}</text>')
    for i, language in enumerate(order):
        parts.append(f'<text x="{label_w - 8}" y="{top + i * row_h + row_h - 7}" '
                     f'text-anchor="end">{escape(language)}</text>')
    path.write_text("\n".join([*parts, "</svg>", ""]), encoding="utf-8")
    return True


def dataset_card(manifest: dict[str, Any], changes: dict[str, Any] | None = None) -> str:
    """The card's Markdown text, from the manifest (without its ``files`` and ``created_at``) and
    the changes from its parent (``manifests.changes.compare``)."""
    t = manifest["totals"]
    walk = manifest["walk"]
    version = manifest["version"]
    problems = ", ".join(f"{k}: {v}" for k, v in walk["origin_problems"].items() if v) or "none"
    as_of = manifest["input"].get("as_of")
    return f"""# Source-code dataset, version {version}

Built by `pipeline` {manifest['software']['pipeline']} from the Software Heritage export
`{manifest['input']['export']}` (fingerprint `{manifest['input']['fingerprint']['sha256']}`),
config sha256 `{manifest['config_sha256']}`.{f" The archive as of {as_of}." if as_of else ""}

## Totals
- {t['files_kept']} files kept, {human_bytes(t['content_bytes'])} of UTF-8 text, in {len(manifest['shards'])} \
Parquet shards ({human_bytes(t['shard_bytes'])}, zstd).
- {t['files_in']} files found by the walk; {t['files_dropped']} dropped, each listed in `dropped/` with its reason.
- {walk['origins']} origins in the export, {walk['origins_walked']} walked (not walked: {problems}).
- {_opt_out(manifest)}

## Languages
{f"![files and bytes per language]({CHART})" if manifest["languages"] else "No file was kept."}

{markdown_table(["language", "files", "bytes"], language_rows(manifest))}

## Licenses
{_licenses(manifest)}

## Personal data and secrets
{_redaction_summary(manifest)}

## Benchmark decontamination
{_decontamination(manifest)}

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

## Changes since the parent
{_changes(changes)}

## Verify
```
sha256sum -c SHA256SUMS          # in this folder
python -m pipeline verify {version}
```
`manifest.json` lists every shard with its rows, bytes and SHA-256, the full config and the
software versions that built it.
"""


def _decontamination(manifest: dict[str, Any]) -> str:
    benchmarks = manifest.get("decontamination")
    if not benchmarks:
        return "Not decontaminated: this version was built without the decontamination stage."
    stage = next((s for s in manifest["stages"] if s["name"] == "decontaminate"), {"dropped": {}})
    rows = [[b["name"], b["items"], b["snippets"], b["sha256"][:16]] for b in benchmarks]
    return (f"Files holding a benchmark's prompt or solution (after whitespace normalisation) were left out: "
            f"{stage['dropped'].get('contaminated', 0)} files (`dropped/`, reason `contaminated`).\n\n"
            + markdown_table(["benchmark", "items", "snippets", "sha256"], rows))


def _redaction_summary(manifest: dict[str, Any]) -> str:
    stage = next((s for s in manifest["stages"] if s["name"] == "redact"), None)
    if stage is None:
        return "Not redacted: this version was built without the redaction stage."
    c = stage["counters"]
    return (
        f"Replaced in {c.get('files_with_pii', 0)} files: {c.get('pii_email', 0)} email addresses (`<EMAIL>`), "
        f"{c.get('pii_key', 0)} keys and tokens (`<KEY>`), {c.get('pii_password', 0)} passwords (`<PASSWORD>`), "
        f"{c.get('pii_ip_address', 0)} public IP addresses (by private ones), {c.get('pii_credit_card', 0)} payment "
        f"card numbers (`<CREDIT_CARD>`; providers' published test cards are kept), {c.get('pii_phone_number', 0)} "
        f"phone numbers (`<PHONE>`). Per file counts are in the `pii` "
        f"column; files whose redaction failed are in `dropped/` (`redaction_failed`), never in `data/`."
    )


def _licenses(manifest: dict[str, Any]) -> str:
    licenses = manifest.get("licenses")
    if licenses is None:
        return "No license detection ran for this version: `detected_licenses` and `license_type` are absent."
    stage = next((s for s in manifest["stages"] if s["name"] == "license"), {"dropped": {}, "counters": {}})
    c = stage["counters"]
    kinds = ", ".join(f"{k}: {v['files']} files ({human_bytes(v['bytes'])})"
                      for k, v in manifest.get("license_types", {}).items()) or "no file kept"
    rows = [[k, v["files"], human_bytes(v["bytes"])] for k, v in sorted(
        licenses.items(), key=lambda kv: (-kv[1]["files"], kv[0]))]
    dropped = ", ".join(f"{k}: {v}" for k, v in stage["dropped"].items()) or "none"
    return (f"Licenses come from ScanCode on {c.get('license_files', 0)} license files ({c.get('scancode_runs', 0)} "
            f"ScanCode runs, the rest from the cache) and from `SPDX-License-Identifier` lines; the licenses of a "
            f"folder apply to every file below it. Kept by type: {kinds}. Dropped: {dropped}. A file with several "
            f"licenses counts under each; `none`: no license found.\n\n"
            + markdown_table(["license", "files", "bytes"], rows))


def _changes(changes: dict[str, Any] | None) -> str:
    if changes is None:
        return "None: this is the first version in its output folder."
    f, r = changes["files"], changes["repositories"]
    why = lambda d: ", ".join(f"{k}: {v}" for k, v in d.items()) or "-"  # noqa: E731
    return (f"Against version {changes['from']}: {f['added']} files added ({why(f['added_by_reason'])}), "
            f"{f['removed']} removed ({why(f['removed_by_reason'])}), {f['modified']} changed; "
            f"{len(r['added'])} repositories added, {len(r['removed'])} removed; "
            f"{len(changes['config'])} config and {len(changes['software'])} software settings changed. "
            "Details: `CHANGELOG.md`, `changes.json`, `changes.parquet`.")


def _opt_out(manifest: dict[str, Any]) -> str:
    o = manifest.get("opt_out")
    if not o:
        return "Opt-out: no registry was given."
    return (f"Opt-out: {o['repositories_removed']} repositories ({o['files_removed']} files) removed by the registry "
            f"(sha256 `{o['registry_sha256'][:16]}…`, {o['entries']} entries) and the "
            f"{o['carried_repositories']} repositories opted out in earlier versions.")
