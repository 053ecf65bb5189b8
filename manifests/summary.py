"""Readable text of a manifest: the dataset card and ``inspect``'s summary share these tables."""

from __future__ import annotations

from typing import Any


def human_bytes(n: int) -> str:
    """``1536`` → ``1.5 KiB``."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # pragma: no cover


def markdown_table(header: list[str], rows: list[list[Any]]) -> str:
    """A Markdown table (also readable as plain text)."""
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=False)] if rows else [
        len(h) for h in header
    ]
    def line(cells: list[Any]) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), sep, *(line(r) for r in rows)])


def language_rows(manifest: dict[str, Any]) -> list[list[Any]]:
    langs = manifest["languages"]
    order = sorted(langs, key=lambda k: (-langs[k]["bytes"], k))
    return [[k, langs[k]["files"], human_bytes(langs[k]["bytes"])] for k in order]


def stage_rows(manifest: dict[str, Any]) -> list[list[Any]]:
    rows = []
    for stage in manifest["stages"]:
        dropped = ", ".join(f"{r}: {n}" for r, n in stage["dropped"].items()) or "-"
        rows.append([stage["name"], stage["in"], stage["kept"], dropped])
    return rows


def timing_lines(manifest: dict[str, Any]) -> list[str]:
    """Where the time went: each stage's CPU and wall seconds, bytes in, MB per CPU second and share;
    and the phases the driver waited for (older manifests have none: nothing)."""
    timings = manifest.get("timings")
    if not timings:
        return []
    rows = [[name, f"{t['cpu_s']:.2f}", f"{t['wall_s']:.2f}", human_bytes(t["bytes"]),
             "-" if t["mb_per_cpu_s"] is None else f"{t['mb_per_cpu_s']:.1f}", f"{100 * t['cpu_share']:.1f}%"]
            for name, t in timings["stages"].items()]
    phases = ", ".join(f"{k} {v:.1f} s" for k, v in timings.get("phases_wall_s", {}).items())
    return [markdown_table(["stage", "cpu s", "wall s", "in", "MB / cpu s", "share of cpu"], rows), "",
            f"phases (wall): {phases}", ""]


def summary(manifest: dict[str, Any]) -> str:
    """What ``inspect`` prints: totals, languages, stages, origins and shards with checksums."""
    t = manifest["totals"]
    walk = manifest["walk"]
    parts = [
        f"version {manifest['version']}  (created {manifest['created_at']})",
        f"input   {manifest['input']['export']}  fingerprint {manifest['input']['fingerprint']['sha256'][:16]}",
        f"config  sha256 {manifest['config_sha256'][:16]}",
        f"files   {t['files_in']} in, {t['files_kept']} kept ({human_bytes(t['content_bytes'])}), "
        f"{t['files_dropped']} dropped; {len(manifest['shards'])} shards, {human_bytes(t['shard_bytes'])}",
        f"origins {walk['origins']} in export, {walk['origins_walked']} walked; "
        + (", ".join(f"{k}: {v}" for k, v in walk["origin_problems"].items() if v) or "no problems"),
        "",
        markdown_table(["language", "files", "bytes"], language_rows(manifest)),
        "",
        markdown_table(["stage", "in", "kept", "dropped by reason"], stage_rows(manifest)),
        "",
        *timing_lines(manifest),
        markdown_table(
            ["shard", "rows", "bytes", "sha256"],
            [[s["path"], s["rows"], human_bytes(s["bytes"]), s["sha256"]] for s in manifest["shards"]],
        ),
    ]
    return "\n".join(parts) + "\n"
