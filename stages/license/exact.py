"""Exact recognition of common license texts, before ScanCode (as GitHub's licensee does).

Most license files are one of a few dozen texts with a copyright line on top. Such a text is
recognised here by a hash of its normalised form, without loading ScanCode's index (seconds of CPU
and ~0.7 GB per process: docs/performance.md); whatever this does not recognise goes to ScanCode as before.

- **Normalisation** (the same for the reference texts and the file): copyright lines dropped
  (``Copyright …``, ``(c) …``, ``© …``, ``All rights reserved``, unless the line also names a
  license or a permission), case folded, every run of non-alphanumeric characters made one space,
  ``licence`` spelt ``license``, a leading ``The MIT License (MIT)`` or ``ISC License`` title dropped,
  and the name that BSD-style texts let the author fill in (``Neither the name of X nor …``,
  ``PROVIDED BY X "AS IS"``, ``IN NO EVENT SHALL X BE LIABLE``) replaced by one word, when that
  name is short and names no license.
- **The table** (``exact_texts.json``): for the license texts and the license-text rules that
  ScanCode ships for ``KEYS``, the SHA-256 of the normalised text → **ScanCode's own answer** on
  that text (its SPDX expressions), computed by ``python -m stages.license.exact`` with the
  installed ScanCode. A recognised file therefore gets exactly the expressions ScanCode gave
  the same text. Texts whose normalised forms collide with different answers are left out. The
  table records ScanCode's version; under another version nothing is recognised here.
- **Safety** (tests/stages/test_license_exact.py): every license text and rule ScanCode ships is
  normalised and looked up; none whose own license is copyleft or otherwise not permissive gets
  a permissive answer.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from functools import cache
from importlib import metadata
from pathlib import Path

TABLE = Path(__file__).with_name("exact_texts.json")

#: ScanCode license keys whose texts (and license-text rules) the table holds.
KEYS = (
    # permissive and public domain
    "mit", "apache-2.0", "bsd-new", "bsd-simplified", "isc", "unlicense", "zlib", "boost-1.0", "bsd-zero",
    "mit-0", "x11", "python", "postgresql", "cc0-1.0", "wtfpl", "bsd-3-clause-clear", "ncsa", "upl-1.0",
    "bsd-original", "cc-by-4.0", "artistic-2.0", "ms-pl",
    # copyleft and others (recognised too, so that copyleft repositories skip the index as well)
    "gpl-2.0", "gpl-3.0", "lgpl-2.1", "lgpl-3.0", "agpl-3.0", "mpl-2.0", "epl-1.0", "epl-2.0",
    "cc-by-sa-4.0", "cc-by-nc-4.0", "eupl-1.2", "lgpl-2.0", "gpl-1.0", "cddl-1.0", "ms-rl", "osl-3.0",
)

_COPYRIGHT_LINE = re.compile(r"^\W{0,8}(?:copyright\b|\(c\)|©|all rights reserved)", re.IGNORECASE)
_LICENSE_WORDS = re.compile(
    r"licen[cs]|gpl|gnu|public|copyleft|mozilla|eclipse|share|creative|affero|permi|warrant|condition|distribut",
    re.IGNORECASE,
)
_NON_ALNUM = re.compile(r"[^a-z0-9]+")
#: Titles ScanCode reads as the same license as the text below them ("The BSD License" is not one: ScanCode
#: reads it as BSD-3-Clause, above a BSD-2-Clause text).
_TITLE = re.compile(r"^(?:the )?(?:mit|isc) license(?: mit| isc)? ")
_HOLDER_SLOTS = (
    re.compile(r"(neither the name of )(.{1,200}?)( nor the names of )"),
    re.compile(r"(provided by )(.{1,200}?)( as is )"),
    re.compile(r"(in no event shall )(.{1,200}?)( be liable )"),
)
_SLOT_WORDS = re.compile(r"licen|gpl|gnu|public|copyleft|mozilla|eclipse|share|creative|affero|warrant|permi"
                         r"|condition|source|binary|distribut|modif")


def normalize(text: str) -> str:
    """The normalised form of a license text (see the module's docstring)."""
    kept = [line for line in text.splitlines()
            if not (_COPYRIGHT_LINE.match(line) and len(line) < 300 and not _LICENSE_WORDS.search(line))]
    words = _NON_ALNUM.sub(" ", " ".join(kept).lower().replace("licence", "license")).strip() + " "
    words = words.replace(" https ", " http ")
    words = _TITLE.sub("", words)
    for slot in _HOLDER_SLOTS:
        words = slot.sub(_holder, words)
    return words.strip()


def _holder(match: re.Match[str]) -> str:
    name = match.group(2)
    if len(name.split()) > 20 or _SLOT_WORDS.search(name):
        return match.group(0)
    return f"{match.group(1)}holder{match.group(3)}"


def digest(text: str) -> str:
    return hashlib.sha256(normalize(text).encode()).hexdigest()


@cache
def _table() -> dict[str, tuple[str, ...]]:
    """The table, or nothing when it was made with another ScanCode version (then ScanCode decides)."""
    try:
        data = json.loads(TABLE.read_text())
    except (OSError, ValueError):
        return {}
    if data.get("scancode_version") != metadata.version("scancode-toolkit"):
        return {}
    return {k: tuple(v) for k, v in data["texts"].items()}


def recognize(text: str) -> tuple[str, ...] | None:
    """ScanCode's SPDX expressions for ``text`` if it is a known license text, else None."""
    if len(text) > 100_000:
        return None
    return _table().get(digest(text))


# -- building the table (needs ScanCode's index; run when ScanCode is upgraded)

def reference_texts() -> list[tuple[str, str, bool, str]]:
    """(file name, ScanCode license expression, whether it is a whole license text, text) of every
    license text (``.LICENSE``) and rule (``.RULE``) ScanCode ships. Reads files only, no index."""
    from licensedcode.models import licenses_data_dir, rules_data_dir

    found = []
    for folder, suffix in ((licenses_data_dir, ".LICENSE"), (rules_data_dir, ".RULE")):
        for path in sorted(Path(folder).glob(f"*{suffix}")):
            raw = path.read_text(encoding="utf-8", errors="replace")
            head, _, body = raw.removeprefix("---\n").partition("\n---\n")
            fields = {}
            for line in head.splitlines():
                if ":" in line and not line.startswith((" ", "-")):
                    key, value = line.split(":", 1)
                    fields[key.strip()] = value.strip()
            if suffix == ".LICENSE":
                found.append((path.name, fields.get("key", ""), True, body))
            else:
                found.append((path.name, fields.get("license_expression", ""), fields.get("is_license_text") == "yes",
                              body))
    return found


def build_table() -> dict[str, object]:
    """ScanCode's answers on the license texts and license-text rules of ``KEYS``, by normalised digest."""
    from licensedcode.cache import get_index
    from licensedcode.detection import detect_licenses

    index = get_index()
    answers: dict[str, set[tuple[str, ...]]] = {}
    for _name, expression, is_text, text in reference_texts():
        if expression not in KEYS or not is_text or not text.strip():
            continue
        detections = detect_licenses(index=index, query_string=text, unknown_licenses=True)
        spdx = tuple(sorted({d.license_expression_spdx for d in detections if d.license_expression_spdx}))
        if not spdx or any("unknown" in e.lower() for e in spdx):
            continue
        answers.setdefault(digest(text), set()).add(spdx)
    texts = {k: list(next(iter(v))) for k, v in sorted(answers.items()) if len(v) == 1}
    return {"scancode_version": metadata.version("scancode-toolkit"), "keys": list(KEYS), "texts": texts}


def main() -> None:
    """Rebuild both tables derived from the installed ScanCode: the exact texts and the license db."""
    from stages.license.policy import LICENSE_DB, scancode_licenses

    table = build_table()
    TABLE.write_text(json.dumps(table, indent=0, sort_keys=True) + "\n")
    print(f"{TABLE}: {len(table['texts'])} texts, ScanCode {table['scancode_version']}", file=sys.stderr)
    fields = ("spdx_license_key", "other_spdx_license_keys", "is_exception", "is_deprecated", "category")
    rows = [[lic[f] for f in fields] for lic in scancode_licenses(use_table=False)]
    db = {"scancode_version": metadata.version("scancode-toolkit"), "fields": fields, "licenses": rows}
    LICENSE_DB.write_text(json.dumps(db, separators=(",", ":")) + "\n")
    print(f"{LICENSE_DB}: {len(db['licenses'])} licenses", file=sys.stderr)


if __name__ == "__main__":
    main()
