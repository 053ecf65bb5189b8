"""Quality of the license stage's permissive / non-permissive decision, on license texts nobody here wrote.

    python benchmarks/license_quality.py [--data /tmp/license-bench] [--offline] [--cases 40]

Each item is one or more real license files put at the root of a one-file repository; the license
stage (``License.scan_texts`` + ``License.classify``, default config, no persistent cache) decides the
class of a file at that root, which is compared with an independent statement of the license.

The ground truth never comes from the code it grades (``LicensePolicy``, ScanCode's categories): a
license id's true class is ``independent_class``: permissive when the Blue Oak Council's list of
permissive licenses (npm ``@blueoak/list``) rates it, non-permissive when it is of a copyleft or
restricted family (``COPYLEFT``: GPL, LGPL, AGPL, MPL, EPL, EUPL, CDDL, OSL, CC-BY-SA, CC-BY-NC, ...),
and unknown otherwise: an item whose declared license has an unknown class is left out (counted).

1. ScanCode's own license texts (licensedcode/data/licenses) against the class of their SPDX id.
2. SPDX's license texts (npm ``spdx-license-list``, SPDX's copies, not ScanCode's), likewise.
3. Debian's /usr/share/common-licenses texts against their file names.
4. Real packages' license files against their declared license: the Python distributions installed
   here (License-Expression, else license classifiers, else a short License field), wheels or
   sdists downloaded from PyPI (``pip download``; a list picked for copyleft licenses), npm's
   bundled node_modules (package.json ``license``), Debian packages' machine-readable
   /usr/share/doc/*/copyright files (every ``License:`` field, ANDed).

5. Package manifests (``--manifests``): every installed distribution's dist-info/METADATA read by the
   stage's manifest parser (``stages.license.manifests``) and classed by the stage's policy, against its
   declared license read by this script's own reader (``declared_python``: License-Expression, a
   classifier table, a free-text table written for this benchmark) classed by ``independent_class``.

Prints Markdown for docs/license.md: per source the accuracy, the confusion matrix and the cases
that disagree. A copyleft-family license (GPL/LGPL/AGPL/MPL/EPL/CC-BY-SA) called permissive is
listed separately; there must be none. Not a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata as metadata
import json
import re
import subprocess
import sys
import tarfile
import time
import zipfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from stages.license import (
    COUNTERS,
    NON_PERMISSIVE,
    PERMISSIVE,
    UNKNOWN_SPDX,
    License,
    LicenseCache,
    LicensePolicy,
    LicenseResource,
    folder_licenses,
    is_license_file,
)
from stages.license.manifests import NameResolver

#: copyleft families (SPDX id prefixes): never permissive
COPYLEFT = re.compile(
    r"^(?:A?GPL|LGPL|MPL|EPL|EUPL|CDDL|CPL|OSL|CC-BY-SA|CC-BY-NC|CC-BY-ND|CECILL|SSPL|RPL|QPL|Sleepycat|IPL|SPL|"
    r"Artistic-1\.0|NPL|MS-RL|APSL|CPAL|ODbL|OFL|GFDL|LPPL|Watcom|RPSL|CC-BY-NC-SA|NGPL|OSL|Motosoto|LiLiQ-R)",
)
MUST_NOT_BE_PERMISSIVE = re.compile(r"^(?:A?GPL|LGPL|MPL|EPL|CC-BY-SA)")

PYPI_PACKAGES = (
    # copyleft and weak copyleft
    "chardet paramiko pylint astroid mutagen html2text certifi frozendict psycopg2-binary pycairo PyGObject "
    "python-xlib gmpy2 rpy2 Levenshtein pyinstaller ansible-core PyMuPDF mysql-connector-python gnureadline "
    "pyenchant python-gettext pyphen pdfarranger yt-dlp ruamel.yaml tqdm "
    # permissive
    "requests flask numpy attrs six click jinja2 urllib3 idna pexpect ptyprocess lxml pyzmq cryptography "
    "python-dateutil pytz sortedcontainers zipp wrapt"
).split()

DEBIAN_NAMES = {
    "Apache-2.0": "Apache-2.0", "Artistic": "Artistic-1.0-Perl", "BSD": "BSD-3-Clause", "CC0-1.0": "CC0-1.0",
    "GFDL-1.2": "GFDL-1.2-only", "GFDL-1.3": "GFDL-1.3-only", "GPL-1": "GPL-1.0-only", "GPL-2": "GPL-2.0-only",
    "GPL-3": "GPL-3.0-only", "LGPL-2": "LGPL-2.0-only", "LGPL-2.1": "LGPL-2.1-only", "LGPL-3": "LGPL-3.0-only",
    "MPL-1.1": "MPL-1.1", "MPL-2.0": "MPL-2.0",
}
#: Debian copyright-format short names that are not SPDX ids
DEP5_ALIASES = {"expat": "MIT", "bsd-2-clause": "BSD-2-Clause", "bsd-3-clause": "BSD-3-Clause",
                "bsd-4-clause": "BSD-4-Clause", "public-domain": "LicenseRef-scancode-public-domain",
                "psf-2": "PSF-2.0", "zlib": "Zlib", "isc": "ISC", "mit": "MIT", "x11": "X11",
                "perl": "Artistic-1.0-Perl OR GPL-1.0-or-later"}

CLASSIFIERS = {
    "MIT License": "MIT", "MIT No Attribution License (MIT-0)": "MIT-0", "BSD License": "BSD-3-Clause",
    "Apache Software License": "Apache-2.0", "ISC License (ISCL)": "ISC",
    "Python Software Foundation License": "PSF-2.0", "The Unlicense (Unlicense)": "Unlicense",
    "zlib/libpng License": "Zlib", "Mozilla Public License 2.0 (MPL 2.0)": "MPL-2.0",
    "Mozilla Public License 1.1 (MPL 1.1)": "MPL-1.1",
    "GNU Lesser General Public License v2 (LGPLv2)": "LGPL-2.0-only",
    "GNU Lesser General Public License v2 or later (LGPLv2+)": "LGPL-2.0-or-later",
    "GNU Lesser General Public License v3 (LGPLv3)": "LGPL-3.0-only",
    "GNU Lesser General Public License v3 or later (LGPLv3+)": "LGPL-3.0-or-later",
    "GNU Library or Lesser General Public License (LGPL)": "LGPL-2.1-or-later",
    "GNU General Public License (GPL)": "GPL-2.0-or-later", "GNU General Public License v2 (GPLv2)": "GPL-2.0-only",
    "GNU General Public License v2 or later (GPLv2+)": "GPL-2.0-or-later",
    "GNU General Public License v3 (GPLv3)": "GPL-3.0-only",
    "GNU General Public License v3 or later (GPLv3+)": "GPL-3.0-or-later",
    "GNU Affero General Public License v3": "AGPL-3.0-only",
    "GNU Affero General Public License v3 or later (AGPLv3+)": "AGPL-3.0-or-later",
    "Eclipse Public License 2.0 (EPL-2.0)": "EPL-2.0", "Eclipse Public License 1.0 (EPL-1.0)": "EPL-1.0",
    "Historical Permission Notice and Disclaimer (HPND)": "HPND", "Boost Software License 1.0 (BSL-1.0)": "BSL-1.0",
    "Academic Free License (AFL)": "AFL-3.0", "Universal Permissive License (UPL)": "UPL-1.0",
    "Public Domain": "LicenseRef-scancode-public-domain",
    "CC0 1.0 Universal (CC0 1.0) Public Domain Dedication": "CC0-1.0",
}
#: free-text License fields seen in package metadata → SPDX
FREE_TEXT = {
    "apache 2.0": "Apache-2.0", "apache license 2.0": "Apache-2.0", "apache license, version 2.0": "Apache-2.0",
    "apache software license": "Apache-2.0", "apache": "Apache-2.0", "apache-2": "Apache-2.0", "asl 2": "Apache-2.0",
    "bsd": "BSD-3-Clause", "new bsd": "BSD-3-Clause", "new bsd license": "BSD-3-Clause", "3-clause bsd": "BSD-3-Clause",
    "bsd 3-clause": "BSD-3-Clause", "bsd-3": "BSD-3-Clause", "bsd license": "BSD-3-Clause", "mit license": "MIT",
    "the mit license": "MIT", "expat": "MIT", "psf": "PSF-2.0", "psf license": "PSF-2.0", "isc license": "ISC",
    "lgpl": "LGPL-2.1-or-later", "gpl": "GPL-2.0-or-later", "mpl 2.0": "MPL-2.0", "mpl-2": "MPL-2.0",
    "dual license": "", "public domain": "LicenseRef-scancode-public-domain", "unlicense": "Unlicense",
}


@dataclass
class Item:
    source: str
    name: str
    truth: str  # permissive / non_permissive
    declared: str
    files: list[tuple[str, str | None, str | None]]  # (relative path, text, problem)
    probe_folder: str = ""  # where the probe file sits (the folder the license files apply to)


# ---------------------------------------------------------------- sources
BLUEOAK: set[str] = set()  # filled by main() from the Blue Oak list
#: Ids SPDX has no Blue Oak rating for but that are public-domain dedications (ScanCode's own id for one).
PUBLIC_DOMAIN_IDS = {"LicenseRef-scancode-public-domain"}
LEFT_OUT: Counter[str] = Counter()  # per source: items whose declared license has no independent class


def independent_class(spdx_id: str) -> str | None:
    """An SPDX id's class from outside the code graded: Blue Oak's permissive list, or a copyleft family."""
    if spdx_id in BLUEOAK or spdx_id in PUBLIC_DOMAIN_IDS:
        return PERMISSIVE
    if COPYLEFT.match(spdx_id):
        return NON_PERMISSIVE
    return None


def independent_truth(expression: str | None, policy: LicensePolicy) -> str | None:
    """The class of a normalised expression by ``independent_class`` (license-expression parses it;
    nothing of the policy's categories is used): OR permissive if a side is, AND if all are, WITH as its
    license; None when the ids it depends on have no independent class."""
    from license_expression import AND, OR, LicenseWithExceptionSymbol

    if not expression:
        return None

    def value(node: object) -> bool | None:
        if isinstance(node, AND | OR):
            values = [value(a) for a in node.args]
            if isinstance(node, OR):
                return True if True in values else (False if all(v is False for v in values) else None)
            return False if False in values else (True if all(v is True for v in values) else None)
        key = node.license_symbol.key if isinstance(node, LicenseWithExceptionSymbol) else node.key
        found = independent_class(key)
        return None if found is None else found == PERMISSIVE

    result = value(policy.licensing.parse(expression))
    return None if result is None else (PERMISSIVE if result else NON_PERMISSIVE)


def scancode_texts(policy: LicensePolicy) -> Iterator[Item]:
    from licensedcode.models import load_licenses

    for key, lic in sorted(load_licenses().items()):
        if not lic.text.strip() or lic.is_unknown:
            continue
        truth = independent_class(lic.spdx_license_key)
        if truth is None:
            LEFT_OUT["scancode"] += 1
            continue
        yield Item("scancode", key, truth, lic.spdx_license_key, [("LICENSE", lic.text, None)])


def spdx_texts(data: Path, policy: LicensePolicy) -> Iterator[Item]:
    licenses = json.loads((data / "spdx-license-list/package/spdx-full.json").read_text())
    for spdx_id, entry in sorted(licenses.items()):
        truth = independent_class(spdx_id)
        if truth is None:
            LEFT_OUT["spdx"] += 1
            continue
        why = "Blue Oak" if truth == PERMISSIVE else "copyleft family"
        yield Item("spdx", spdx_id, truth, f"{spdx_id} ({why})", [("LICENSE", entry["licenseText"], None)])


def debian_common_licenses(policy: LicensePolicy) -> Iterator[Item]:
    root = Path("/usr/share/common-licenses")
    for name, spdx_id in sorted(DEBIAN_NAMES.items()):
        path = root / name
        truth = independent_truth(policy.normalize(spdx_id), policy)
        if path.is_file() and truth is None:
            LEFT_OUT["debian-common"] += 1
        elif path.is_file():
            yield Item("debian-common", name, truth, spdx_id, [("COPYING", path.read_text(errors="replace"), None)])


def python_distributions(policy: LicensePolicy) -> Iterator[Item]:
    seen = set()
    for dist in sorted(metadata.distributions(), key=lambda d: d.metadata["Name"].lower()):
        name = dist.metadata["Name"]
        if name.lower() in seen:
            continue
        seen.add(name.lower())
        declared = declared_python(dist.metadata, policy)
        files = []
        for f in dist.files or []:
            parts = f.parts
            if not parts or not parts[0].endswith(".dist-info"):
                continue
            relative = "/".join(parts[2:]) if len(parts) > 2 and parts[1] == "licenses" else "/".join(parts[1:])
            if parts[1] == "licenses" or (len(parts) == 2 and is_license_file(parts[1])):
                try:
                    files.append((relative, Path(dist.locate_file(f)).read_text(errors="replace"), None))
                except OSError:
                    continue
        item = _item("python-installed", name, declared, files, policy)
        if item:
            yield item


def pypi_packages(data: Path, policy: LicensePolicy, offline: bool) -> Iterator[Item]:
    folder = data / "pypi"
    folder.mkdir(parents=True, exist_ok=True)
    if not offline:
        for name in PYPI_PACKAGES:
            if not any(_dist_name(p) == _normal(name) for p in folder.iterdir()):
                # a wheel when there is one (no build), else the sdist
                for extra in (["--only-binary", ":all:"], ["--no-binary", ":all:", "--no-build-isolation"]):
                    done = subprocess.run(
                        [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(folder), *extra, name],
                        capture_output=True, timeout=300,
                    )
                    if done.returncode == 0:
                        break
    for archive in sorted(folder.iterdir()):
        try:
            meta, files = read_archive(archive)
        except (OSError, tarfile.TarError, zipfile.BadZipFile, UnicodeDecodeError):
            continue
        declared = declared_python(meta, policy) if meta is not None else None
        item = _item("pypi", archive.name, declared, files, policy)
        if item:
            yield item


def read_archive(archive: Path) -> tuple[metadata.PackageMetadata | None, list[tuple[str, str | None, str | None]]]:
    """(metadata, license files at the package root) of a wheel or an sdist."""
    import email

    files: list[tuple[str, str | None, str | None]] = []
    meta = None
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as z:
            for name in z.namelist():
                parts = name.split("/")
                if not parts[0].endswith(".dist-info"):
                    continue
                if parts[1:] == ["METADATA"]:
                    meta = email.message_from_bytes(z.read(name))
                elif len(parts) > 2 and parts[1] == "licenses" or len(parts) == 2 and is_license_file(parts[1]):
                    relative = "/".join(parts[2:]) if parts[1] == "licenses" else parts[1]
                    files.append((relative, z.read(name).decode("utf-8", errors="replace"), None))
    elif archive.name.endswith((".tar.gz", ".tgz")):
        with tarfile.open(archive) as t:
            for member in t.getmembers():
                parts = member.name.split("/")
                if not member.isfile() or len(parts) < 2:
                    continue
                if parts[1:] == ["PKG-INFO"]:
                    meta = email.message_from_bytes(t.extractfile(member).read())  # type: ignore[union-attr]
                elif is_license_file(member.name):
                    text = t.extractfile(member).read().decode("utf-8", errors="replace")  # type: ignore[union-attr]
                    files.append(("/".join(parts[1:]), text, None))
    return meta, files  # type: ignore[return-value]


def npm_packages(policy: LicensePolicy) -> Iterator[Item]:
    root = Path("/usr/lib/node_modules")
    for manifest in sorted(root.rglob("package.json")):
        folder = manifest.parent
        if folder.parent.name != "node_modules" and folder.parent.parent.name != "node_modules":
            continue  # a package's own sub-folders (test fixtures, ...) are not packages
        try:
            info = json.loads(manifest.read_text())
        except (OSError, json.JSONDecodeError, UnicodeDecodeError):
            continue
        if not isinstance(info, dict) or "name" not in info:
            continue
        declared = info.get("license")
        if isinstance(declared, dict):
            declared = declared.get("type")
        if not isinstance(declared, str):
            declared = None
        files = [(p.name, p.read_text(errors="replace"), None) for p in sorted(folder.iterdir())
                 if p.is_file() and is_license_file(p.name)]
        item = _item("npm", f"{info['name']}@{info.get('version', '?')}", _spdx(declared, policy), files, policy)
        if item:
            yield item


def debian_copyright_files(policy: LicensePolicy) -> Iterator[Item]:
    for path in sorted(Path("/usr/share/doc").glob("*/copyright")):
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        if not text.startswith("Format:"):
            continue  # not machine-readable: no declared license to compare with
        names = sorted({m.strip() for m in re.findall(r"(?m)^License:[ \t]*(\S[^\n]*)$", text)})
        expressions = [_dep5(n, policy) for n in names]
        if not names or any(e is None for e in expressions):
            continue
        declared = " AND ".join(f"({e})" for e in expressions)
        item = _item("debian-copyright", path.parent.name, declared, [("debian/copyright", text, None)], policy,
                     probe_folder="debian")
        if item:
            yield item


def _dep5(name: str, policy: LicensePolicy) -> str | None:
    parts = re.split(r"\s+(and|or)\s+|\s*,\s*(?:and|or)?\s*", name, flags=re.IGNORECASE)
    out = []
    for part in [p for p in parts if p]:
        if part.lower() in ("and", "or"):
            out.append(part.upper())
            continue
        token = part.strip()
        token = re.sub(r"\s+with\s+.*$", "", token, flags=re.IGNORECASE)  # keep the base license's class
        plus = token.endswith("+")
        base = token.rstrip("+")
        spdx = DEP5_ALIASES.get(base.lower())
        if spdx is None:
            candidate = re.sub(r"^(L?GPL|AGPL|GFDL)-(\d)$", r"\1-\2.0", base)
            candidate = re.sub(r"^(L?GPL|AGPL|GFDL)-(\d\.\d+)$", r"\1-\2", candidate)
            if re.match(r"^(L?GPL|AGPL|GFDL)-\d\.\d+$", candidate):
                candidate += "-or-later" if plus else "-only"
            spdx = policy.normalize(candidate)
        if spdx is None:
            return None
        out.append(f"({spdx})")
    if not out or out[-1] in ("AND", "OR"):
        return None
    expression = " ".join(out)
    return policy.normalize(expression)


def declared_python(meta: metadata.PackageMetadata, policy: LicensePolicy) -> str | None:
    """The license a Python distribution declares, as a normalised SPDX expression (None if unknown)."""
    expression = meta.get("License-Expression")
    if expression:
        return policy.normalize(expression)
    classifiers = [c.split(" :: ")[-1] for c in meta.get_all("Classifier") or [] if c.startswith("License ::")]
    mapped = [CLASSIFIERS[c] for c in classifiers if c in CLASSIFIERS]
    if mapped:
        return policy.normalize(" OR ".join(sorted(set(mapped))))
    return _spdx(meta.get("License"), policy)


def _spdx(text: str | None, policy: LicensePolicy) -> str | None:
    if not text or len(text) > 60:
        return None
    text = text.strip().strip("()")
    normal = policy.normalize(text)
    if normal is None:
        alias = FREE_TEXT.get(text.lower().rstrip("."))
        normal = policy.normalize(alias) if alias else None
    return normal


def _item(source: str, name: str, declared: str | None, files: list, policy: LicensePolicy,
          probe_folder: str = "") -> Item | None:
    if not declared or not files:
        return None
    truth = independent_truth(declared, policy)
    if truth is None:
        LEFT_OUT[source] += 1
        return None
    return Item(source, name, truth, declared, files, probe_folder)


def _dist_name(path: Path) -> str:
    return _normal(re.split(r"-\d", path.name, maxsplit=1)[0])


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


# ---------------------------------------------------------------- evaluation
def evaluate(
    stage: License, resource: LicenseResource, cache: LicenseCache, items: list[Item]
) -> tuple[list[tuple[Item, str, list[str]]], dict[str, int], float]:
    """(item, predicted license_type, detected ids) for every item; the scan's counters; its CPU seconds.

    All items are one partition (bucket 0). ``cache``: kept across sources (in memory), so a text
    already scanned for an earlier source is a cache hit, not a second ScanCode run."""
    origins, paths, blobs = [], [], []
    texts: dict[str, str | None] = {}  # blob → text; None: unreadable (the file has a problem)
    for i, item in enumerate(items):
        for relative, text, problem in item.files:
            if text is None or problem is not None:
                # its own blob id: an unreadable file is never the empty text (which adds nothing)
                blob = hashlib.sha1(f"unreadable: {problem}".encode()).hexdigest()
                texts[blob] = None
            else:
                blob = hashlib.sha1(text.encode()).hexdigest()
                texts[blob] = text
            origins.append(f"item{i}")
            paths.append("/" + relative)
            blobs.append(blob)
    files = pa.table({
        "bucket": pa.array([0] * len(blobs), pa.int32()), "origin_url": pa.array(origins, pa.string()),
        "path": pa.array(paths, pa.string()), "blob_id": pa.array(blobs, pa.string()),
    })
    start = time.process_time()
    # what the reduce's scan does: ScanCode on the blobs the cache does not know, the others from the cache
    to_scan = {blob: text for blob, text in texts.items() if cache.get(blob) is None}
    found = stage.scan_texts(files, to_scan, resource, cache)
    cpu = time.process_time() - start
    counters = {name: pc.sum(found[name]).as_py() or 0 for name in COUNTERS}
    probes = pa.table({
        "origin_url": pa.array([f"item{i}" for i in range(len(items))], pa.string()),
        "path": pa.array([f"/{item.probe_folder}/probe.txt".replace("//", "/") for item in items], pa.string()),
        "content": pa.array([""] * len(items), pa.string()),
    })
    ids, types, _ = stage.classify(probes, resource.policy, folder_licenses(found))
    return list(zip(items, types.to_pylist(), ids.to_pylist(), strict=True)), counters, cpu


def report(
    source: str, results: list[tuple[Item, str, list[str]]], cases: int, policy: LicensePolicy
) -> tuple[int, int]:
    labels = [PERMISSIVE, NON_PERMISSIVE, "no_license"]
    matrix = Counter((item.truth, predicted) for item, predicted, _ in results)
    right = sum(matrix[t, t] for t in labels)
    print(f"\n### {source}: {right}/{len(results)} = {right / max(1, len(results)):.1%}\n")
    print("| truth \\ predicted | " + " | ".join(labels) + " |")
    print("|---|" + "---|" * len(labels))
    for truth in (PERMISSIVE, NON_PERMISSIVE):
        print(f"| {truth} | " + " | ".join(str(matrix[truth, p]) for p in labels) + " |")
    wrong = [(item, p, ids) for item, p, ids in results if p != item.truth]
    if wrong:
        # "declared found": ScanCode found every id the item declares, so the disagreement is in the
        # permissive list (ScanCode's category against the reference), or in other licenses found beside it
        found = [set(policy.ids(_declared_expression(item, policy))) <= set(ids) for item, _, ids in wrong]
        print(f"\n{len(wrong)} disagreements; in {sum(found)} of them every declared id was found.\n")
        print("| item | declared | detected | declared found | predicted |\n|---|---|---|---|---|")
        for (item, predicted, ids), ok in list(zip(wrong, found, strict=True))[:cases]:
            print(f"| {item.name} | {item.declared} | {' '.join(ids) or '-'} | {'yes' if ok else 'no'} | {predicted} |")
        if len(wrong) > cases:
            print(f"| … {len(wrong) - cases} more | | | | |")
    return right, len(results)


def _declared_expression(item: Item, policy: LicensePolicy) -> str:
    """The SPDX expression an item declares (``declared`` may carry a note in parentheses)."""
    for candidate in (item.declared, item.declared.split(" (")[0]):
        normal = policy.normalize(candidate, detected=True)
        if normal:
            return normal
    return UNKNOWN_SPDX


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("/tmp/license-bench"), help="downloads go here")
    parser.add_argument("--offline", action="store_true", help="download nothing; use what --data has")
    parser.add_argument("--cases", type=int, default=40, help="disagreements listed per source")
    parser.add_argument("--manifests", action="store_true", help="only the manifest benchmark (source 5)")
    args = parser.parse_args()
    args.data.mkdir(parents=True, exist_ok=True)
    if not fetch_npm(args.data, args.offline):
        sys.exit("the Blue Oak list (npm @blueoak/list) is the ground truth: fetch it first (run without --offline)")
    BLUEOAK.update(lic["id"] for rating in json.loads((args.data / "blueoak/package/index.json").read_text())
                   for lic in rating["licenses"])
    stage = License()
    resource = stage.setup()
    policy = resource.policy
    if args.manifests:
        manifest_benchmark(resource, args.cases)
        return
    cache = LicenseCache(stage.cache_dir)  # in memory (no cache_dir), shared by every source
    sources: list[tuple[str, list[Item]]] = [
        ("1. ScanCode license texts vs Blue Oak / copyleft families", list(scancode_texts(policy))),
        ("2. SPDX license texts vs Blue Oak / copyleft families", list(spdx_texts(args.data, policy))),
    ]
    sources += [
        ("3. Debian common-licenses vs file name", list(debian_common_licenses(policy))),
        ("4a. installed Python distributions vs declared license", list(python_distributions(policy))),
        ("4b. PyPI wheels/sdists vs declared license", list(pypi_packages(args.data, policy, args.offline))),
        ("4c. npm packages (node_modules) vs package.json license", list(npm_packages(policy))),
        ("4d. Debian machine-readable copyright files vs their License fields", list(debian_copyright_files(policy))),
    ]
    print(f"# License quality\n\n`python benchmarks/license_quality.py` (scancode-toolkit "
          f"{metadata.version('scancode-toolkit')}, license-expression {metadata.version('license-expression')})")
    total_right = total = 0
    violations = []
    for title, items in sources:
        results, counters, cpu = evaluate(stage, resource, cache, items)
        right, n = report(title, results, args.cases, policy)
        total_right += right
        total += n
        runs = counters.get("scancode_runs", 0)
        print(f"\nScanCode: {runs} runs, {cpu:.1f} CPU s ({1000 * cpu / max(1, runs):.0f} ms per license file, "
              f"index load included where it happened), {counters.get('license_files', 0)} license files.")
        for item, predicted, ids in results:
            families = [i for i in item.declared.replace("(", " ").replace(")", " ").split()
                        if MUST_NOT_BE_PERMISSIVE.match(i)]
            if predicted == PERMISSIVE and item.truth == NON_PERMISSIVE and families:
                violations.append((title, item, ids))
    print(f"\n**All sources: {total_right}/{total} = {total_right / max(1, total):.1%}**")
    print(f"\nLeft out (declared license with no independent class): {dict(sorted(LEFT_OUT.items()))}")
    print(f"\nCopyleft-family (GPL/LGPL/AGPL/MPL/EPL/CC-BY-SA) licenses called permissive: {len(violations)}")
    for title, item, ids in violations:
        print(f"- {title}: {item.name} declared {item.declared}, detected {' '.join(ids)}")


def manifest_benchmark(resource: LicenseResource, cases: int) -> None:
    """Source 5: each installed distribution's METADATA through the stage's manifest parser and policy,
    against this script's own reading of it classed by ``independent_class``."""
    from stages.license.manifests import read_manifest, resolve

    policy = resource.policy
    names = NameResolver(policy, lambda text: resource.scanner.get().scan(text, License().config.timeout_s)[0])
    matrix: Counter[tuple[str, str]] = Counter()
    wrong = []
    seen: set[str] = set()
    start = time.process_time()
    for dist in sorted(metadata.distributions(), key=lambda d: d.metadata["Name"].lower()):
        name = dist.metadata["Name"]
        path = dist.locate_file(f"{dist._path.name}/METADATA") if hasattr(dist, "_path") else None  # type: ignore
        if name.lower() in seen or path is None or not Path(path).is_file():
            continue
        seen.add(name.lower())
        truth = independent_truth(declared_python(dist.metadata, policy), policy)
        if truth is None:
            LEFT_OUT["manifests"] += 1
            continue
        values = read_manifest("METADATA", Path(path).read_text(errors="replace"))
        expression = resolve("METADATA", values, names)[0] if values is not None else UNKNOWN_SPDX
        predicted = policy.license_type([expression]) if expression else "no_license"
        matrix[truth, predicted] += 1
        if predicted != truth:
            wrong.append((name, declared_python(dist.metadata, policy), expression, predicted))
    cpu = time.process_time() - start
    right = matrix[PERMISSIVE, PERMISSIVE] + matrix[NON_PERMISSIVE, NON_PERMISSIVE]
    n = sum(matrix.values())
    print(f"\n### 5. installed distributions' METADATA: stage's parser vs independent reading: {right}/{n} = "
          f"{right / max(1, n):.1%} ({cpu:.2f} CPU s, {names.scancode_lookups} ScanCode name lookups)\n")
    print("| truth \\ predicted | permissive | non_permissive | no_license |\n|---|---|---|---|")
    for truth in (PERMISSIVE, NON_PERMISSIVE):
        print(f"| {truth} | " + " | ".join(str(matrix[truth, p]) for p in (PERMISSIVE, NON_PERMISSIVE, "no_license"))
              + " |")
    print(f"\nLeft out (no independent class): {LEFT_OUT['manifests']}\n")
    for name, declared, expression, predicted in wrong[:cases]:
        print(f"- {name}: declared {declared}, parsed {expression}, predicted {predicted}")


def fetch_npm(data: Path, offline: bool) -> bool:
    """SPDX's license texts and the Blue Oak list (npm packages), unpacked under ``data``; False if absent."""
    for package, folder in (("spdx-license-list@6.12.0", "spdx-license-list"), ("@blueoak/list@15.0.0", "blueoak")):
        target = data / folder
        if (target / "package").is_dir():
            continue
        if offline:
            return False
        done = subprocess.run(["npm", "pack", package, "--pack-destination", str(data)], capture_output=True,
                              text=True, timeout=300)
        if done.returncode != 0:
            print(f"(npm pack {package} failed: {done.stderr.strip()[:200]})", file=sys.stderr)
            return False
        target.mkdir(exist_ok=True)
        with tarfile.open(data / done.stdout.strip().splitlines()[-1]) as t:
            t.extractall(target, filter="data")
    return True


if __name__ == "__main__":
    main()
