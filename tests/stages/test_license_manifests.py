"""License statements in package manifests and README license sections, and how the stage combines sources.

Real manifests from real packages and real license texts (tests/data/license-manifests/SOURCES.md says
where each came from; the other license texts are ScanCode's own, as in test_license.py)."""

from pathlib import Path

import pyarrow as pa
import pytest

from stages.license import UNKNOWN, LicensePolicy, combine, folder_licenses, manifest_kind
from stages.license.manifests import (
    REFERENCE,
    NameResolver,
    classifier_license,
    manifest_folder,
    read_manifest,
    readme_license_section,
    resolve,
)
from tests.stages.test_license import Repos, _classified, _prepared, _rows

DATA = Path(__file__).parent.parent / "data" / "license-manifests"


def real(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def texts() -> dict[str, str]:
    from licensedcode.models import load_licenses

    db = load_licenses()
    return {key: db[key].text for key in ("mit", "gpl-2.0", "gpl-3.0", "apache-2.0")}


@pytest.fixture
def repos(tmp_path: Path) -> Repos:
    return Repos(tmp_path / "store")


@pytest.fixture(scope="module")
def policy() -> LicensePolicy:
    return LicensePolicy(ignore=("LicenseRef-scancode-warranty-disclaimer",
                                 "LicenseRef-scancode-unknown-license-reference"))


class NoScan:
    """A ScanCode stand-in that fails the test if a name needs ScanCode: the tables must resolve these."""

    def __call__(self, text: str) -> list[str]:
        raise AssertionError(f"ScanCode asked about {text!r}")


def declared(kind: str, text: str, policy: LicensePolicy) -> str | None:
    values = read_manifest(kind, text)
    assert values is not None
    return resolve(kind, values, NameResolver(policy, NoScan()))[0]


# ---------------------------------------------------------------- each format, parsed
@pytest.mark.parametrize(
    ("name", "kind", "expression"),
    [
        ("swh.model-8.4.1.METADATA", "METADATA", "GPL-3.0-only"),  # License-Expression: GPL-3.0
        ("gemfileparser2-0.9.4.METADATA", "METADATA", "GPL-3.0-or-later OR MIT"),  # License: (an SPDX expression)
        ("intbitset-4.1.2.METADATA", "METADATA", "LGPL-3.0-or-later"),
        ("mutagen-1.47.0.PKG-INFO", "PKG-INFO", "GPL-2.0-or-later"),
        ("pylint-3.0.3.pyproject.toml", "pyproject.toml", "GPL-2.0-or-later"),  # {text=...} wins over a classifier
        ("python-dateutil-2.8.2.setup.cfg", "setup.cfg", "Apache-2.0 OR BSD-3-Clause"),  # "Dual License": classifiers
        ("serde-1.0.197.Cargo.toml", "Cargo.toml", "MIT OR Apache-2.0"),
        ("npm.package.json", "package.json", "Artistic-2.0"),
        ("ms.package.json", "package.json", "MIT"),
        ("jquery-1.8.3.package.json", "package.json", "MIT"),  # the old "licenses" array
        ("monolog.composer.json", "composer.json", "MIT"),
        ("drupal-core.composer.json", "composer.json", "GPL-2.0-or-later"),
        ("rake.gemspec", "gemspec", "MIT"),
        ("json.gemspec", "gemspec", "Ruby"),
        ("junit-4.13.2.pom.xml", "pom.xml", "EPL-1.0"),
        ("apache-parent-13.pom.xml", "pom.xml", "Apache-2.0"),
        ("text-unidecode-1.3.METADATA", "METADATA", "Artistic-2.0"),  # free text "Artistic License"
    ],
)
def test_real_manifests_of_each_format(name: str, kind: str, expression: str, policy: LicensePolicy) -> None:
    assert declared(kind, real(name), policy) == policy.normalize(expression)


def test_manifest_names_and_folders() -> None:
    for path in ("/package.json", "/a/composer.json", "/Cargo.toml", "/pyproject.toml", "/setup.cfg", "/PKG-INFO",
                 "/x/foo-1.0.dist-info/METADATA", "/rake.gemspec", "/pom.xml"):
        assert manifest_kind(path) is not None, path
    for path in ("/METADATA", "/package.json.bak", "/Package.json", "/mypom.xml", "/src/setup.py", "/LICENSE"):
        assert manifest_kind(path) is None, path
    assert manifest_folder("/lib/x/package.json") == "lib/x"
    assert manifest_folder("/vendor/foo-1.0.dist-info/METADATA") == "vendor"
    assert manifest_folder("/foo.egg-info/PKG-INFO") == ""


def test_values_that_are_not_licenses_or_cannot_be_read(policy: LicensePolicy) -> None:
    # npm's convention: the license is in a file (scanned on its own): a reference, ignored by default
    assert declared("package.json", '{"name": "x", "license": "SEE LICENSE IN LICENSE.txt"}', policy) == REFERENCE
    assert declared("package.json", '{"name": "x", "license": "UNLICENSED"}', policy) == (
        "LicenseRef-scancode-proprietary-license")
    assert declared("Cargo.toml", '[package]\nname = "x"\nlicense = "MIT/Apache-2.0"\n', policy) == "MIT OR Apache-2.0"
    assert declared("package.json", '{"name": "x", "version": "1.0.0"}', policy) is None  # states nothing
    assert declared("pyproject.toml", '[project]\nname = "x"\nlicense = {file = "LICENSE"}\n', policy) == REFERENCE
    assert read_manifest("package.json", "{ not json") is None
    assert read_manifest("pom.xml", "<project><licenses>") is None
    assert read_manifest("Cargo.toml", "[package\n") is None
    gem = 'Gem::Specification.new do |s|\n  s.license = LICENSE_NAME\nend\n'  # computed in Ruby: not read
    assert declared("gemspec", gem, policy) == UNKNOWN
    assert classifier_license("License :: OSI Approved") == ""
    assert classifier_license("Programming Language :: Python") is None


def test_free_text_names_go_to_scancode_once_and_unresolvable_is_unknown(policy: LicensePolicy) -> None:
    asked: list[str] = []

    def scan(text: str) -> list[str]:  # what ScanCode answers is irrelevant here: it is asked, once per name
        asked.append(text)
        return []

    resolver = NameResolver(policy, scan)
    for _ in range(3):
        values = read_manifest("package.json", '{"license": "Frobnicator Public Licence 7"}')
        assert resolve("package.json", values, resolver) == (UNKNOWN, 1)
    assert asked == ["Frobnicator Public Licence 7"] and resolver.scancode_lookups == 1
    assert resolver.name("Apache 2.0") == "Apache-2.0" and resolver.name("BSD") == "BSD-3-Clause"
    assert resolver.name("GNU General Public License v3 or later (GPLv3+)") == "GPL-3.0-or-later"
    assert asked == ["Frobnicator Public Licence 7"]  # the tables answered the others


def test_scancode_resolves_names_the_tables_do_not_know(policy: LicensePolicy) -> None:
    from stages.license.scancode import Scanner

    scanner = Scanner()
    resolver = NameResolver(policy, lambda text: scanner.scan(text, 30.0)[0])
    assert resolver.name("GNU Lesser General Public License version 2.1") == "LGPL-2.1-only"
    assert resolver.name("Mozilla Public License, Version 2.0") == "MPL-2.0"


def test_readme_license_section() -> None:
    readme = ("# tool\n\nDoes things.\n\n## Install\n\npip install tool\n\n## License\n\n"
              "This project is licensed under the GNU General Public License v3.0.\n\n"
              "## Contributing\n\nPRs welcome.\n")
    assert readme_license_section(readme) == "This project is licensed under the GNU General Public License v3.0."
    rst = "tool\n====\n\nUsage\n-----\n\nrun it\n\nLicence\n-------\n\nMIT licensed, see LICENSE.\n"
    assert readme_license_section(rst) == "MIT licensed, see LICENSE."
    assert readme_license_section("# tool\n\nNo section about it here; license-free words.\n") == ""


# ---------------------------------------------------------------- the stage: sources combined
G = "https://github.com/o/"


def test_a_gpl_package_whose_only_statement_is_its_manifest_is_not_kept(repos: Repos) -> None:
    prepared = _prepared(repos, [
        (G + "swh", "/swh.model.egg-info/PKG-INFO", real("swh.model-8.4.1.METADATA")),
        (G + "drupal", "/core/composer.json", real("drupal-core.composer.json")),
        (G + "npm", "/package.json", real("npm.package.json")),
    ])
    counters = prepared[3]
    assert counters["manifest_files"] == 3 and counters["manifest_licenses"] == 3
    assert counters["scancode_runs"] == 0 and counters["scancode_index_loads"] == 0  # parsed, never scanned
    found = _classified(prepared, [(G + "swh", "/swh/model/hashutil.py", ""), (G + "drupal", "/core/lib/a.php", ""),
                                   (G + "drupal", "/index.php", ""), (G + "npm", "/lib/npm.js", "")])
    assert found[G + "swh/swh/model/hashutil.py"] == (["GPL-3.0-only"], "non_permissive")
    assert found[G + "drupal/core/lib/a.php"] == (["GPL-2.0-or-later"], "non_permissive")
    assert found[G + "drupal/index.php"] == ([], "no_license")  # a manifest applies to its folder and below
    assert found[G + "npm/lib/npm.js"] == (["Artistic-2.0"], "non_permissive")


def test_rust_dual_licensed_crate_is_kept_as_an_or(repos: Repos) -> None:
    """serde's layout: LICENSE-MIT, LICENSE-APACHE and Cargo.toml's MIT OR Apache-2.0."""
    files = [(G + "serde", "/LICENSE-MIT", real("cargo.LICENSE-MIT")),
             (G + "serde", "/LICENSE-APACHE", real("cargo.LICENSE-APACHE"))]
    without = _prepared(repos, files)  # what the license files alone give (today's ANDed files)
    rows = [(G + "serde", "/serde/src/lib.rs", "")]
    assert _classified(without, rows)[G + "serde/serde/src/lib.rs"] == (["Apache-2.0", "MIT"], "permissive")
    stage, resource, found, _ = _prepared(repos, [*files, (G + "serde", "/serde/Cargo.toml",
                                                           real("serde-1.0.197.Cargo.toml"))])
    assert _classified((stage, resource, found, {}), rows)[G + "serde/serde/src/lib.rs"] == (
        ["Apache-2.0", "MIT"], "permissive")
    assert stage.explain(_rows(rows), resource.policy, folder_licenses(found)).to_pylist() == ["MIT OR Apache-2.0"]


def test_dual_license_in_two_files_is_an_or_when_the_manifest_says_so(repos: Repos) -> None:
    """gemfileparser2: LICENSE.GPLv3 + LICENSE.MIT, METADATA ``GPL-3.0-or-later OR MIT``. Without the
    manifest the two files are ANDed (non-permissive: the disagreement docs/license.md listed)."""
    files = [(G + "g", "/LICENSE.GPLv3", real("LICENSE.GPLv3")), (G + "g", "/LICENSE.MIT", real("LICENSE.MIT"))]
    rows = [(G + "g", "/gemfileparser2/__init__.py", "")]
    assert _classified(_prepared(repos, files), rows)[G + "g/gemfileparser2/__init__.py"][1] == "non_permissive"
    prepared = _prepared(repos, [*files, (G + "g", "/gemfileparser2.egg-info/PKG-INFO",
                                          real("gemfileparser2-0.9.4.METADATA"))])
    assert _classified(prepared, rows)[G + "g/gemfileparser2/__init__.py"] == (
        ["GPL-3.0-or-later", "MIT"], "permissive")


def test_or_later_comes_from_the_manifest_or_the_header(texts: dict[str, str], repos: Repos) -> None:
    """mutagen: COPYING is the GPL-2.0 text (ScanCode: GPL-2.0-only); PKG-INFO says GPL-2.0-or-later."""
    prepared = _prepared(repos, [
        (G + "mutagen", "/COPYING", real("mutagen-1.47.0.COPYING")),
        (G + "mutagen", "/PKG-INFO", real("mutagen-1.47.0.PKG-INFO")),
        (G + "hdr", "/COPYING", texts["gpl-2.0"]),
        (G + "plain", "/COPYING", texts["gpl-2.0"]),
    ])
    found = _classified(prepared, [
        (G + "mutagen", "/mutagen/_file.py", ""),
        (G + "hdr", "/a.c", "/* SPDX-License-Identifier: GPL-2.0-or-later */\nint x;\n"),
        (G + "hdr", "/b.c", "int y;\n"),
        (G + "plain", "/a.c", ""),
    ])
    assert found[G + "mutagen/mutagen/_file.py"] == (["GPL-2.0-or-later"], "non_permissive")
    assert found[G + "hdr/a.c"] == (["GPL-2.0-or-later"], "non_permissive")
    assert found[G + "hdr/b.c"] == (["GPL-2.0-only"], "non_permissive")  # the header applies to its file alone
    assert found[G + "plain/a.c"] == (["GPL-2.0-only"], "non_permissive")


def test_a_manifest_that_disagrees_with_the_license_file_keeps_the_repository_out(
    texts: dict[str, str], repos: Repos
) -> None:
    """package.json says MIT (ms's real one), COPYING is GPL-3.0: both apply (AND), not kept."""
    prepared = _prepared(repos, [(G + "d", "/package.json", real("ms.package.json")),
                                 (G + "d", "/COPYING", texts["gpl-3.0"])])
    assert _classified(prepared, [(G + "d", "/index.js", "")])[G + "d/index.js"] == (
        ["GPL-3.0-only", "MIT"], "non_permissive")
    # and an OR manifest does not explain a license file naming something else: Cargo MIT OR Apache + COPYING GPL
    prepared = _prepared(repos, [(G + "c", "/Cargo.toml", real("serde-1.0.197.Cargo.toml")),
                                 (G + "c", "/COPYING", texts["gpl-3.0"])])
    assert _classified(prepared, [(G + "c", "/src/lib.rs", "")])[G + "c/src/lib.rs"][1] == "non_permissive"


def test_unresolvable_manifest_values_and_broken_manifests_are_not_permissive(
    texts: dict[str, str], repos: Repos
) -> None:
    prepared = _prepared(repos, [
        (G + "broken", "/package.json", '{"name": "x", "license": "MIT",'),  # cut short: could say anything
        (G + "silent", "/package.json", '{"name": "x"}'),
        (G + "mit", "/LICENSE", texts["mit"]), (G + "mit", "/package.json", '{"name": "x"}'),
    ])
    assert prepared[3]["manifest_unparsable"] == 1
    found = _classified(prepared, [(G + "broken", "/a.js", ""), (G + "silent", "/a.js", ""), (G + "mit", "/a.js", "")])
    assert found[G + "broken/a.js"] == ([UNKNOWN], "non_permissive")
    assert found[G + "silent/a.js"] == ([], "no_license")
    assert found[G + "mit/a.js"] == (["MIT"], "permissive")


def test_readme_is_read_only_when_nothing_else_states_a_license(texts: dict[str, str], repos: Repos) -> None:
    gpl_readme = ("# proj\n\nA tool.\n\n## License\n\nThis program is free software: you can redistribute it and/or "
                  "modify it under the terms of the GNU General Public License as published by the Free Software "
                  "Foundation, either version 3 of the License, or (at your option) any later version.\n")
    prepared = _prepared(repos, [
        (G + "r", "/README.md", gpl_readme),
        (G + "l", "/README.md", gpl_readme), (G + "l", "/LICENSE", texts["mit"]),  # has a license file: not picked
        (G + "m", "/README.md", gpl_readme), (G + "m", "/package.json", real("ms.package.json")),
        (G + "n", "/README.md", "# n\n\nNothing about licensing.\n"),
    ])
    counters = prepared[3]
    assert counters["readme_files"] == 3 and counters["readme_licenses"] == 1  # r's and m's README: one blob
    found = _classified(prepared, [(G + "r", "/src/a.py", ""), (G + "l", "/a.py", ""), (G + "m", "/a.js", ""),
                                   (G + "n", "/a.py", ""), (G + "r", "/b.py", "# SPDX-License-Identifier: MIT\n")])
    assert found[G + "r/src/a.py"] == (["GPL-3.0-or-later"], "non_permissive")
    assert found[G + "l/a.py"] == (["MIT"], "permissive")
    assert found[G + "m/a.js"] == (["MIT"], "permissive")  # the manifest states a license: the README is not read
    assert found[G + "n/a.py"] == ([], "no_license")
    assert found[G + "r/b.py"] == (["MIT"], "permissive")  # its own SPDX line: the README fallback does not apply


def test_manifest_results_are_cached_and_not_read_again(repos: Repos, tmp_path: Path) -> None:
    files = [(G + "s", "/Cargo.toml", real("serde-1.0.197.Cargo.toml"))]
    first = _prepared(repos, files, tmp_path)[3]
    assert first["manifest_licenses"] == 1 and first["scancode_cache_hits"] == 0
    for blob in (repos.root / "content").iterdir():
        blob.unlink()
    again = _prepared(repos, files, tmp_path)
    assert again[3]["scancode_cache_hits"] == 1 and again[3].get("manifest_unparsable", 0) == 0
    assert _classified(again, [(G + "s", "/src/lib.rs", "")])[G + "s/src/lib.rs"] == (
        ["Apache-2.0", "MIT"], "permissive")


def test_combine_rules(policy: LicensePolicy) -> None:
    f, m = "file", "manifest"
    assert combine(policy, [(f, "MIT"), (f, "Apache-2.0"), (m, "MIT OR Apache-2.0")]) == ("MIT OR Apache-2.0",)
    assert combine(policy, [(f, "GPL-2.0-only"), (m, "GPL-2.0-or-later")]) == ("GPL-2.0-or-later",)
    assert combine(policy, [(f, "GPL-3.0-only"), (m, "MIT")]) == ("GPL-3.0-only", "MIT")
    assert combine(policy, [(f, "GPL-3.0-only"), (f, "MIT")], ["GPL-3.0-or-later OR MIT"]) == (
        "GPL-3.0-or-later OR MIT",)
    assert combine(policy, [("readme", "GPL-3.0-only")], ["MIT"]) == ("MIT",)
    assert combine(policy, [(f, UNKNOWN), (m, "MIT OR Apache-2.0")]) == (UNKNOWN, "MIT OR Apache-2.0")


def test_the_found_rows_say_where_each_statement_comes_from(texts: dict[str, str], repos: Repos) -> None:
    _, _, found, _ = _prepared(repos, [(G + "a", "/LICENSE", texts["mit"]),
                                       (G + "a", "/package.json", real("ms.package.json")),
                                       (G + "b", "/README.md", "# b\n\n## License\n\nMIT\n")])
    by_path = dict(zip(found["path"].to_pylist(), found["source"].to_pylist(), strict=True))
    assert by_path == {"/LICENSE": "file", "/package.json": "manifest", "/README.md": "readme"}
    assert isinstance(found, pa.Table)


def test_each_task_resolves_names_with_its_own_memo_and_counters(repos: Repos) -> None:
    """Two tasks on one worker's resource, one after the other: each asks ScanCode for the name and
    counts its own lookup (a memo on the shared resource made the second count 0, and a task's counters
    read another thread's lookups)."""
    import hashlib

    manifest = '{"name": "x", "license": "Frobnicator Public Licence 7"}'
    blob = hashlib.sha1(manifest.encode()).hexdigest()
    files = pa.table({"bucket": pa.array([0], pa.int32()), "origin_url": [G + "a"], "path": ["/package.json"],
                      "blob_id": [blob]})
    stage = repos.stage(None)
    resource = stage.setup()
    totals = []
    for _ in range(2):
        found = stage.scan_texts(files, {blob: manifest}, resource)
        totals.append((sum(found["manifest_name_lookups"].to_pylist()), sum(found["manifest_files"].to_pylist())))
    assert totals == [(1, 1), (1, 1)]
    assert not hasattr(resource, "names")
