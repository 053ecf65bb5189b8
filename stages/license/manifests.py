"""License statements in package manifests and in a README's license section.

A manifest is read with its format's own parser (json, tomllib, configparser, email.parser,
xml.etree; a gemspec is Ruby code, read with a narrow regex on ``.license =`` / ``.licenses =``),
never with ScanCode. Its values become one SPDX expression:

- a valid SPDX expression is normalised by license-expression (``LicensePolicy.normalize``);
- a free-text name ("MIT License", "Apache 2.0", "BSD", a trove classifier) goes through the alias
  tables below, then through ScanCode's matching (``NameResolver``: loads ScanCode's index only for
  a name the tables do not know; memoised per resolver, which each reduce task makes for itself);
- what neither resolves is ``LicenseRef-scancode-unknown``: unresolvable is never permissive.

Several values of one manifest (an npm ``licenses`` array, composer's list, several classifiers, several
Maven ``<license>`` elements, a gemspec's ``licenses``) are alternatives (each format documents them so)
and are ORed.
"""

from __future__ import annotations

import configparser
import email.parser
import json
import re
import threading
import tomllib
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

#: What a manifest value that names no license but points at a file contributes ("SEE LICENSE IN
#: LICENSE.txt", ``license = {file = "LICENSE"}``, ``license-file``): ScanCode's id for a reference
#: to a license stated elsewhere, ignored by default (the file is a license file, scanned on its own).
REFERENCE = "LicenseRef-scancode-unknown-license-reference"
UNKNOWN = "LicenseRef-scancode-unknown"
PROPRIETARY = "LicenseRef-scancode-proprietary-license"
PUBLIC_DOMAIN = "LicenseRef-scancode-public-domain"

#: The manifests read, by file name (exact case, as the package managers want them); METADATA only in
#: a ``*.dist-info`` folder.
MANIFEST_PATTERN = (r"(?:^|/)(?:package\.json|composer\.json|Cargo\.toml|pyproject\.toml|setup\.cfg|PKG-INFO"
                    r"|[^/]+\.dist-info/METADATA|[^/]+\.gemspec|pom\.xml)$")
_MANIFEST = re.compile(MANIFEST_PATTERN)
#: A README at the repository's root (read only as a fallback, see ``readme_license_section``).
README_PATTERN = r"^/?(?i:readme)(?:\.(?i:md|markdown|rst|txt|adoc|org))?$"
_README = re.compile(README_PATTERN)

#: Bump when the parsing changes: cached manifest results are keyed with it.
MANIFEST_PARSER_VERSION = "1"

#: Trove classifiers (``License :: ...``, last part) → SPDX, from PyPI's classifier list.
CLASSIFIERS = {
    "MIT License": "MIT", "MIT No Attribution License (MIT-0)": "MIT-0", "BSD License": "BSD-3-Clause",
    "Apache Software License": "Apache-2.0", "ISC License (ISCL)": "ISC",
    "Python Software Foundation License": "PSF-2.0", "The Unlicense (Unlicense)": "Unlicense",
    "zlib/libpng License": "Zlib", "Boost Software License 1.0 (BSL-1.0)": "BSL-1.0",
    "Universal Permissive License (UPL)": "UPL-1.0", "Academic Free License (AFL)": "AFL-3.0",
    "Historical Permission Notice and Disclaimer (HPND)": "HPND", "Public Domain": PUBLIC_DOMAIN,
    "CC0 1.0 Universal (CC0 1.0) Public Domain Dedication": "CC0-1.0",
    "Mozilla Public License 1.0 (MPL)": "MPL-1.0", "Mozilla Public License 1.1 (MPL 1.1)": "MPL-1.1",
    "Mozilla Public License 2.0 (MPL 2.0)": "MPL-2.0",
    "Eclipse Public License 1.0 (EPL-1.0)": "EPL-1.0", "Eclipse Public License 2.0 (EPL-2.0)": "EPL-2.0",
    "GNU General Public License (GPL)": "GPL-1.0-or-later",
    "GNU General Public License v2 (GPLv2)": "GPL-2.0-only",
    "GNU General Public License v2 or later (GPLv2+)": "GPL-2.0-or-later",
    "GNU General Public License v3 (GPLv3)": "GPL-3.0-only",
    "GNU General Public License v3 or later (GPLv3+)": "GPL-3.0-or-later",
    "GNU Lesser General Public License v2 (LGPLv2)": "LGPL-2.0-only",
    "GNU Lesser General Public License v2 or later (LGPLv2+)": "LGPL-2.0-or-later",
    "GNU Lesser General Public License v3 (LGPLv3)": "LGPL-3.0-only",
    "GNU Lesser General Public License v3 or later (LGPLv3+)": "LGPL-3.0-or-later",
    "GNU Library or Lesser General Public License (LGPL)": "LGPL-2.0-or-later",
    "GNU Affero General Public License v3": "AGPL-3.0-only",
    "GNU Affero General Public License v3 or later (AGPLv3+)": "AGPL-3.0-or-later",
    "GNU Free Documentation License (FDL)": "GFDL-1.3-or-later",
    "Artistic License": "Artistic-2.0", "European Union Public Licence 1.2 (EUPL 1.2)": "EUPL-1.2",
    "Other/Proprietary License": PROPRIETARY, "Freely Distributable": "LicenseRef-scancode-free-unknown",
}
#: Classifiers that name no license: they count for nothing.
CLASSIFIERS_SILENT = frozenset({"OSI Approved", "DFSG approved"})
#: Free-text names seen in manifests → SPDX (lower case, spaces and punctuation collapsed, see ``_key``).
ALIASES = {
    "mit": "MIT", "mit license": "MIT", "the mit license": "MIT", "mit licence": "MIT", "expat": "MIT",
    "apache": "Apache-2.0", "apache 2": "Apache-2.0", "apache 2.0": "Apache-2.0", "apache2": "Apache-2.0",
    "apache license 2.0": "Apache-2.0", "apache license version 2.0": "Apache-2.0", "asl 2.0": "Apache-2.0",
    "apache software license": "Apache-2.0", "apache software license 2.0": "Apache-2.0",
    "the apache software license version 2.0": "Apache-2.0", "the apache license version 2.0": "Apache-2.0",
    "apache license v2.0": "Apache-2.0",
    "bsd": "BSD-3-Clause", "bsd license": "BSD-3-Clause", "new bsd": "BSD-3-Clause", "new bsd license": "BSD-3-Clause",
    "bsd 3 clause": "BSD-3-Clause", "3 clause bsd": "BSD-3-Clause", "modified bsd": "BSD-3-Clause",
    "bsd 2 clause": "BSD-2-Clause", "simplified bsd": "BSD-2-Clause", "isc": "ISC", "isc license": "ISC",
    "psf": "PSF-2.0", "psf license": "PSF-2.0", "python software foundation license": "PSF-2.0",
    "zlib": "Zlib", "unlicense": "Unlicense", "the unlicense": "Unlicense", "wtfpl": "WTFPL", "cc0": "CC0-1.0",
    "public domain": PUBLIC_DOMAIN, "unlicensed": PROPRIETARY, "proprietary": PROPRIETARY,
    "gpl": "GPL-1.0-or-later", "gplv2": "GPL-2.0-only", "gplv2+": "GPL-2.0-or-later", "gplv3": "GPL-3.0-only",
    "gplv3+": "GPL-3.0-or-later", "lgpl": "LGPL-2.0-or-later", "lgplv2+": "LGPL-2.0-or-later",
    "lgplv3": "LGPL-3.0-only", "lgplv3+": "LGPL-3.0-or-later", "agplv3": "AGPL-3.0-only",
    "agplv3+": "AGPL-3.0-or-later", "mpl 2.0": "MPL-2.0", "mpl2": "MPL-2.0", "artistic license": "Artistic-2.0",
    "gnu general public license v3 or later gplv3+": "GPL-3.0-or-later",
    "gnu general public license v2 or later gplv2+": "GPL-2.0-or-later",
    "gnu general public license v3 gplv3": "GPL-3.0-only", "gnu general public license v2 gplv2": "GPL-2.0-only",
    "gnu general public license version 2": "GPL-2.0-only", "gnu general public license version 3": "GPL-3.0-only",
    "gnu lesser general public license v3 or later lgplv3+": "LGPL-3.0-or-later",
    "eclipse public license 1.0": "EPL-1.0", "eclipse public license v2.0": "EPL-2.0",
    "eclipse public license 2.0": "EPL-2.0",
}
#: Free-text values that name no license ("Dual License": the classifiers say which): unresolved without asking
#: ScanCode; the classifiers decide, and without classifiers the value is unknown.
NOT_NAMES = frozenset({"dual license", "dual licensed", "other", "unknown", "see license", "see license file",
                       "license", "custom", "see below", "none"})
#: License URLs (Maven's ``<url>``), scheme and ``www.`` removed, trailing ``/`` / ``.txt`` / ``.html`` removed.
URLS = {
    "apache.org/licenses/license-2.0": "Apache-2.0", "opensource.org/licenses/mit": "MIT",
    "opensource.org/licenses/mit-license.php": "MIT", "opensource.org/licenses/bsd-license.php": "BSD-3-Clause",
    "opensource.org/licenses/bsd-3-clause": "BSD-3-Clause", "eclipse.org/legal/epl-v10": "EPL-1.0",
    "eclipse.org/legal/epl-2.0": "EPL-2.0", "gnu.org/licenses/gpl": "GPL-3.0-only",
    "gnu.org/licenses/gpl-3.0": "GPL-3.0-only", "gnu.org/licenses/lgpl": "LGPL-3.0-only",
    "gnu.org/licenses/old-licenses/gpl-2.0": "GPL-2.0-only", "gnu.org/licenses/old-licenses/lgpl-2.1": "LGPL-2.1-only",
    "mozilla.org/mpl/2.0": "MPL-2.0",
}


def manifest_kind(path: str) -> str | None:
    """The manifest format of ``path`` ("package.json", "Cargo.toml", "METADATA", "gemspec", ...) or None."""
    match = _MANIFEST.search(path)
    if match is None:
        return None
    name = path.rsplit("/", 1)[-1]
    return "gemspec" if name.endswith(".gemspec") else name


def manifest_mask(paths: pa.Array | pa.ChunkedArray) -> pa.BooleanArray:
    """``manifest_kind(path) is not None`` over a string column (RE2; null stays null)."""
    return pc.match_substring_regex(paths, MANIFEST_PATTERN)


def is_root_readme(path: str) -> bool:
    return _README.match(path) is not None


def root_readme_mask(paths: pa.Array | pa.ChunkedArray) -> pa.BooleanArray:
    """``is_root_readme`` over a string column."""
    return pc.match_substring_regex(paths, README_PATTERN)


def manifest_folder(path: str) -> str:
    """The folder a manifest applies to (no leading slash, "" for the root): its own, except for
    ``X.dist-info/METADATA`` and ``X.egg-info/PKG-INFO``: the folder holding the metadata folder."""
    parts = path.strip("/").split("/")[:-1]
    if parts and parts[-1].endswith((".dist-info", ".egg-info")):
        parts = parts[:-1]
    return "/".join(parts)


# ---------------------------------------------------------------- readers: text → raw values
class Values:
    """What one manifest states: ``spdx`` values (meant as SPDX expressions), ``names`` (free text),
    ``classifiers`` (trove), ``references`` (a license file named instead of a license). Each list is
    a set of alternatives (ORed). ``primary`` values win over classifiers (PEP 639: License-Expression
    first; a License field that resolves, then the classifiers)."""

    def __init__(self) -> None:
        self.spdx: list[str] = []
        self.names: list[str] = []
        self.classifiers: list[str] = []
        self.references = 0

    def add(self, value: Any, spdx: bool = True) -> None:
        if isinstance(value, str) and value.strip():
            value = value.strip()
            if value.upper().startswith("SEE LICENSE IN") or value.lower().startswith("file:"):
                self.references += 1
            else:
                (self.spdx if spdx else self.names).append(value)


def _package_json(text: str, values: Values) -> None:
    data = json.loads(text)
    if not isinstance(data, dict):
        return
    for key in ("license", "licenses"):
        entry = data.get(key)
        for item in entry if isinstance(entry, list) else [entry]:
            values.add(item.get("type") if isinstance(item, dict) else item)


def _composer_json(text: str, values: Values) -> None:
    data = json.loads(text)
    entry = data.get("license") if isinstance(data, dict) else None
    for item in entry if isinstance(entry, list) else [entry]:
        values.add(item)


def _cargo_toml(text: str, values: Values) -> None:
    data = tomllib.loads(text)
    for table in (data.get("package"), (data.get("workspace") or {}).get("package")):
        if not isinstance(table, dict):
            continue
        license_ = table.get("license")
        if isinstance(license_, str):
            values.add(license_)
        if "license-file" in table:
            values.references += 1


def _pyproject_toml(text: str, values: Values) -> None:
    data = tomllib.loads(text)
    project = data.get("project") if isinstance(data.get("project"), dict) else {}
    poetry = ((data.get("tool") or {}).get("poetry")) if isinstance(data.get("tool"), dict) else None
    for table in (project, poetry if isinstance(poetry, dict) else {}):
        license_ = table.get("license")
        if isinstance(license_, str):
            values.add(license_)  # PEP 639: an SPDX expression (poetry: an SPDX id)
        elif isinstance(license_, dict):
            if isinstance(license_.get("text"), str):
                values.add(license_["text"], spdx=False)
            elif "file" in license_:
                values.references += 1
        for classifier in table.get("classifiers") or []:
            if isinstance(classifier, str):
                values.classifiers.append(classifier)


def _setup_cfg(text: str, values: Values) -> None:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.read_string(text)
    if not parser.has_section("metadata"):
        return
    metadata = parser["metadata"]
    for key in ("license_expression", "license-expression"):
        values.add(metadata.get(key))
    values.add(metadata.get("license"), spdx=False)
    values.classifiers += [c.strip() for c in (metadata.get("classifiers") or "").splitlines() if c.strip()]


def _core_metadata(text: str, values: Values) -> None:
    message = email.parser.Parser().parsestr(text, headersonly=True)
    values.add(message.get("License-Expression"))
    license_ = message.get("License")
    if license_ and license_.strip().upper() not in ("UNKNOWN", ""):
        values.add(license_, spdx=False)
    values.classifiers += [str(c) for c in message.get_all("Classifier") or []]


_GEMSPEC_LICENSE = re.compile(r"^\s*\w+\.licen[cs]es?\s*=\s*(.+?)\s*(?:#.*)?$", re.MULTILINE)
_RUBY_STRING = re.compile(r"""(?:"([^"\\#]*)"|'([^'\\]*)')""")
_RUBY_WORDS = re.compile(r"%w[\[(]([^\])]*)[\])]")


def _gemspec(text: str, values: Values) -> None:
    """``spec.license = "MIT"`` / ``s.licenses = ["MIT", "Ruby"]`` / ``%w[MIT Ruby]``: string literals only
    (a gemspec is Ruby code; a value computed by code is not read, and a line that assigns no literal counts
    as unknown)."""
    for match in _GEMSPEC_LICENSE.finditer(text):
        expression = match.group(1)
        words = _RUBY_WORDS.search(expression)
        found = words.group(1).split() if words else [a or b for a, b in _RUBY_STRING.findall(expression)]
        if not found:
            values.names.append("")  # assigned something that is not a literal: unresolvable
        for value in found:
            values.add(value)


def _pom_xml(text: str, values: Values) -> None:
    root = ET.fromstring(text)
    licenses = next((child for child in root if child.tag.rsplit("}", 1)[-1] == "licenses"), None)
    if licenses is None:
        return
    for entry in licenses:
        fields = {child.tag.rsplit("}", 1)[-1]: (child.text or "").strip() for child in entry}
        name, url = fields.get("name", ""), fields.get("url", "")
        if name:
            values.add(name, spdx=False)
        elif url:
            values.add("url:" + url, spdx=False)


READERS: dict[str, Callable[[str, Values], None]] = {
    "package.json": _package_json, "composer.json": _composer_json, "Cargo.toml": _cargo_toml,
    "pyproject.toml": _pyproject_toml, "setup.cfg": _setup_cfg, "PKG-INFO": _core_metadata,
    "METADATA": _core_metadata, "gemspec": _gemspec, "pom.xml": _pom_xml,
}


def read_manifest(kind: str, text: str) -> Values | None:
    """The license values ``text`` (a manifest of ``kind``) states; None when its format's parser refuses it."""
    values = Values()
    try:
        READERS[kind](text, values)
    except (ValueError, TypeError, AttributeError, KeyError, configparser.Error, ET.ParseError, RecursionError):
        return None  # json / toml / xml / ini errors are ValueError subclasses or these
    return values


# ---------------------------------------------------------------- resolution: values → one SPDX expression
def _key(name: str) -> str:
    """A free-text name, compared loosely: lower case, ``,;:()"`` and ``-_`` and runs of spaces → one space."""
    return re.sub(r"\s+", " ", re.sub(r"[,;:()\"'_]|(?<=[a-z])-(?=[a-z0-9])", " ", name.lower())).strip().rstrip(".")


def _url_key(url: str) -> str:
    key = re.sub(r"^(?:https?://)?(?:www\.)?", "", url.strip().lower())
    return re.sub(r"(?:\.txt|\.html?|\.php)?/?$", "", key) if not key.endswith(".php") else key


class NameResolver:
    """Free-text license names → SPDX expressions: the alias tables, then ScanCode's matching on the
    name (``scan``: a callable text → SPDX expressions, which loads ScanCode's index the first time it
    is called). Memoised per resolver (one per task: its memo and ``scancode_lookups`` are the task's)."""

    def __init__(self, policy: Any, scan: Callable[[str], list[str]]) -> None:
        self.policy = policy
        self.scan = scan
        self.scancode_lookups = 0
        self._memo: dict[str, str | None] = {}
        self._lock = threading.Lock()

    def spdx(self, value: str, cargo: bool = False) -> str | None:
        """A value meant as an SPDX expression, normalised; else resolved as a name."""
        normal = self.policy.normalize(value.strip())
        if normal is None and cargo and "/" in value:  # Cargo's old "MIT/Apache-2.0" meant OR
            normal = self.policy.normalize(" OR ".join(p.strip() for p in value.split("/")))
        return normal if normal is not None else self.name(value)

    def name(self, value: str) -> str | None:
        """A free-text name (or ``url:...``) → a normalised SPDX expression; None when nothing resolves it."""
        with self._lock:
            if value in self._memo:
                return self._memo[value]
        result = self._resolve(value)
        with self._lock:
            self._memo[value] = result
        return result

    def _resolve(self, value: str) -> str | None:
        if not value.strip():
            return None
        if value.startswith("url:"):
            alias = URLS.get(_url_key(value[4:]))
            return self.policy.normalize(alias) if alias else None
        normal = self.policy.normalize(value.strip().strip("()"))
        if normal is not None:
            return normal
        if _key(value) in NOT_NAMES:
            return None
        alias = ALIASES.get(_key(value))
        if alias is not None:
            return self.policy.normalize(alias, detected=True)
        with self._lock:
            self.scancode_lookups += 1
        found = set()
        for expression in self.scan(value):
            normal = self.policy.normalize(expression, detected=True)
            found.add(normal if normal is not None else UNKNOWN)
        found.discard(REFERENCE)
        if not found or found == {UNKNOWN}:
            return None
        return " AND ".join(f"({e})" if " " in e else e for e in sorted(found))


def classifier_license(classifier: str) -> str | None:
    """``License :: OSI Approved :: MIT License`` → ``MIT``; "" for a classifier naming no license; None
    for one that is not a license classifier."""
    parts = [p.strip() for p in classifier.split("::")]
    if parts[0] != "License":
        return None
    last = parts[-1]
    if len(parts) == 1 or last in CLASSIFIERS_SILENT:
        return ""
    return CLASSIFIERS.get(last, f"?{last}")


def resolve(kind: str, values: Values, resolver: NameResolver) -> tuple[str | None, int]:
    """(the manifest's expression or None when it states none, how many values could not be resolved).

    Primary values (SPDX fields, then free-text License / name fields) win over classifiers; a primary
    free-text value that does not resolve falls back to the classifiers when there are some, else it is
    ``LicenseRef-scancode-unknown``. The alternatives of one list are ORed."""
    unresolved = 0
    primary = []
    for value in values.spdx:
        expression = resolver.spdx(value, cargo=kind == "Cargo.toml")
        primary.append(expression)
    for value in values.names:
        primary.append(resolver.name(value))
    classified = []
    for classifier in values.classifiers:
        spdx = classifier_license(classifier)
        if spdx is None or spdx == "":
            continue
        classified.append(spdx if not spdx.startswith("?") else resolver.name(spdx[1:]))
    resolved = [e for e in primary if e is not None]
    chosen: list[str | None]
    if resolved and len(resolved) == len(primary):
        chosen = primary
    elif classified:
        chosen = classified
        unresolved += len(primary) - len(resolved)
    else:
        chosen = primary
    unresolved += sum(1 for e in chosen if e is None)
    expressions = sorted({e if e is not None else UNKNOWN for e in chosen})
    if not expressions:
        return (REFERENCE if values.references else None), unresolved
    if len(expressions) == 1:
        return expressions[0], unresolved
    joined = " OR ".join(f"({e})" if " " in e else e for e in expressions)
    return resolver.policy.normalize(joined, detected=True) or UNKNOWN, unresolved


# ---------------------------------------------------------------- a README's license section
_HEADING = re.compile(
    r"^(?:(?P<atx>#{1,6})[ \t]*(?P<atx_title>[^\n]*?)[ \t#]*$"
    r"|(?P<setext_title>[^\n]+)\n(?P<underline>=+|-+|~+|\^+|\*+)[ \t]*$"
    r"|\.\. _[^\n]*$)",
    re.MULTILINE,
)
_LICENSE_TITLE = re.compile(r"\b(?:licen[cs](?:e|es|ing)|copying|copyright)\b", re.IGNORECASE)


def readme_license_section(text: str) -> str:
    """The license section(s) of a README (Markdown ATX or setext headings, reStructuredText underlined
    titles): from a heading that names a license, copying or copyright to the next heading of the same or a
    higher level; "" when there is none (the README is then not scanned)."""
    headings = []  # (start, end of the heading line, level, title)
    for match in _HEADING.finditer(text):
        if match.group("atx"):
            headings.append((match.start(), match.end(), len(match.group("atx")), match.group("atx_title")))
        elif match.group("setext_title") and match.group("setext_title").strip():
            underline = match.group("underline")
            if len(underline.strip()) >= max(3, len(match.group("setext_title").strip()) // 2):
                level = {"=": 1, "-": 2}.get(underline[0], 3)
                headings.append((match.start(), match.end(), level, match.group("setext_title")))
    sections = []
    for i, (_, end, level, title) in enumerate(headings):
        if not _LICENSE_TITLE.search(title):
            continue
        stop = next((s for s, _, lv, _ in headings[i + 1:] if lv <= level), len(text))
        sections.append(text[end:stop].strip())
    return "\n\n".join(s for s in sections if s)


def mask_or(*masks: pa.BooleanArray) -> np.ndarray:
    """Elementwise OR of boolean columns, nulls as False."""
    out = np.zeros(len(masks[0]), dtype=bool)
    for mask in masks:
        out |= pc.fill_null(mask, False).to_numpy(zero_copy_only=False)
    return out
