import gzip
import hashlib
import logging
import threading
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.errors import PipelineError
from pipeline.local_corpus import LocalCorpus
from schemas import CLASSIFIED_SCHEMA, LANGUAGE_SCHEMA, WALK_SCHEMA
from stages.decode import Decode
from stages.fetch import Fetch
from stages.license import (
    UNKNOWN,
    UNKNOWN_SPDX,
    License,
    LicenseCache,
    LicenseConfig,
    LicensePolicy,
    LicenseResource,
    folder_licenses,
    is_license_file,
    license_file_mask,
    spdx_expressions,
)


@pytest.fixture(scope="module")
def texts() -> dict[str, str]:
    """License texts from ScanCode's own data (licensedcode/data/licenses/<key>.LICENSE)."""
    from licensedcode.models import load_licenses

    db = load_licenses()
    keys = ["mit", "apache-2.0", "bsd-new", "isc", "unlicense", "gpl-2.0", "gpl-3.0", "lgpl-2.1", "agpl-3.0",
            "mpl-2.0", "epl-2.0", "cc-by-sa-4.0"]
    return {key: db[key].text for key in keys}


def _scanned(text: str) -> str:
    """``text`` with a line that the exact recogniser does not know, so that ScanCode reads it."""
    return text + "\n\nThis file is part of the project's distribution.\n"


def _detections(counters: dict[str, int]) -> int:
    """Texts detected: by ScanCode, or recognised exactly before it."""
    return counters["scancode_runs"] + counters["exact_matches"]


@pytest.fixture(scope="module")
def policy() -> LicensePolicy:
    return LicensePolicy(ignore=LicenseConfig().ignore)


class Repos:
    """License files of some repositories, in a real content store (gzip blobs by SHA-1), run
    through the license stage's map and reduce the way a build does, in one process."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "content").mkdir(parents=True, exist_ok=True)

    def walk_rows(self, files: list[tuple[str, str, str | bytes | None]]) -> pa.Table:
        """WALK_SCHEMA rows for (origin, path, content); content None: no blob in the store."""
        rows = []
        for origin, path, content in files:
            data = content.encode() if isinstance(content, str) else content
            blob = hashlib.sha1(data if data is not None else path.encode() + origin.encode()).hexdigest()
            if data is not None:
                (self.root / "content" / blob).write_bytes(gzip.compress(data))
            rows.append({"content_id": blob, "blob_id": blob, "origin_url": origin, "repo_name": "o/r",
                         "snapshot_id": "s", "revision_id": "r", "directory_id": "d", "branch_name": "HEAD",
                         "path": path, "path_is_utf8": True, "length": len(data or b""), "status": "visible"})
        return pa.Table.from_pylist(rows, schema=WALK_SCHEMA)

    def stage(self, cache_dir: Path | None = None, **config) -> License:
        fetch = Fetch(str(self.root))
        return License(LicenseConfig(**config), str(cache_dir) if cache_dir else None, reader=(fetch, Decode()))

    def reduce(self, stage: License, files: list[tuple[str, str, str | bytes | None]]
               ) -> tuple[pa.Table, dict[str, int], LicenseResource]:
        """The reduced rows of ``files`` (all in partition 0) and the reduce's counters."""
        resource = stage.setup()
        keys = stage.map(self.walk_rows(files), resource)
        keys = keys.add_column(0, "bucket", pa.array([0] * keys.num_rows, pa.int32()))
        reduced = stage.reduce(LocalCorpus(keys, resource))
        return reduced.rows.table, reduced.counters, resource


@pytest.fixture
def repos(tmp_path: Path) -> Repos:
    return Repos(tmp_path / "store")


def _prepared(repos: Repos, files: list[tuple[str, str, str | bytes | None]], cache_dir: Path | None = None,
              **config) -> tuple[License, LicenseResource, pa.Table, dict[str, int]]:
    stage = repos.stage(cache_dir, **config)
    found, counters, resource = repos.reduce(stage, files)
    return stage, resource, found, counters


def _rows(files: list[tuple[str, str, str]]) -> pa.Table:
    """LANGUAGE_SCHEMA rows for (origin, path, content)."""
    n = len(files)
    columns = {
        "blob_id": [hashlib.sha1(c.encode()).hexdigest() for _, _, c in files], "content_id": ["0" * 40] * n,
        "sha256": ["0" * 64] * n, "origin_url": [o for o, _, _ in files], "repo_name": ["o/r"] * n,
        "snapshot_id": ["s"] * n, "revision_id": ["r"] * n, "directory_id": ["d"] * n, "branch_name": ["HEAD"] * n,
        "visit_date": [None] * n, "revision_date": [None] * n, "committer_date": [None] * n,
        "path": [p for _, p, _ in files], "path_is_utf8": [True] * n, "extension": ["py"] * n,
        "length_bytes": [len(c.encode()) for _, _, c in files], "src_encoding": ["UTF-8"] * n,
        "language": ["Python"] * n, "language_source": ["extension"] * n, "is_vendor": [False] * n,
        "is_generated": [False] * n, "content": [c for _, _, c in files],
    }
    return pa.table(columns, schema=LANGUAGE_SCHEMA)


Prepared = tuple[License, LicenseResource, pa.Table, dict[str, int]]


def _classified(prepared: Prepared, files: list[tuple[str, str, str]]) -> dict[str, tuple[list[str], str]]:
    stage, resource, found, _ = prepared
    ids, types, _ = stage.classify(_rows(files), resource.policy, folder_licenses(found))
    return {f"{o}{p}": (i, t) for (o, p, _), i, t in zip(files, ids.to_pylist(), types.to_pylist(), strict=True)}


# ---------------------------------------------------------------- license file names
LICENSE_NAMES = """LICENSE LICENCE COPYING COPYRIGHT UNLICENSE NOTICE LEGAL LICENSE.md LICENSE-MIT COPYING.LESSER
license.txt LICENSE.rst MIT-LICENSE LICENSES/MIT.txt LICENSES/GPL-2.0-or-later.txt LICENSE-APACHE LICENSE.txt
License.txt licence.md
LICENSE.markdown COPYING3 COPYING.LIB COPYRIGHT.txt COPYRIGHTS NOTICE.txt NOTICE.md LEGAL.txt UNLICENSE.txt LICENSES.txt
LICENSE-2.0.txt APACHE-LICENSE-2.0.txt LICENSE.GPLv3 LICENSE.BSD mit-license.txt GPL-LICENSE LICENSE.html
LICENSES/preferred/GPL-2.0 LICENSE_1_0.txt LICENSING.md copying.txt LICENSE.apache2 LICENSE-MIT.txt license
debian/copyright GPL.txt gpl-3.0.txt MIT.txt Apache-2.0.txt LGPL BSD-3-Clause.md GPL-2.0-or-later.txt
CC-BY-SA-4.0.txt MPL-2.0 AGPL-3.0-only.txt gpl-2.0+.txt""".split()
NOT_LICENSE_NAMES = """get_license_types.slurm update-copyright check_licenses add_license_header
LICENSES/CHANGELOG.rst x-1.0.dist-info/licenses/README.rst licenses/AUTHORS.rst licenses/p7zip/src-history.txt
templates/license_list.html license-details.html LICENSES/CODE_OF_CONDUCT.md
license_checker.py licenses.go LicenseManager.java license.js licenses.json NOTICE.py legal.go
copyright.py check-license.sh license.json LICENSE.pdf README.md README LICENSEE licensed.py unlicensed_users.csv
THIRD-PARTY-LICENSES THIRD_PARTY_NOTICES.txt ThirdPartyNotices.txt license-checker license_manager.go
src/licenses/validator.py licenses.rs Licenser.java notices.ts copyrightHeader.java mylicensefile.c licenseUtils.js
setup.py LICENSE.png main.c mit.py gplot.txt bsdiff.c apache.conf mitigation.txt apache_beam.py isc_dhcp.md zlib.h
mpl_toolkits.py artistic_style.css""".split()


@pytest.mark.parametrize("name", LICENSE_NAMES)
def test_license_file_names(name: str) -> None:
    assert is_license_file(name) and is_license_file(f"/src/pkg/{name}") and is_license_file(f"/{name.upper()}")


@pytest.mark.parametrize("name", NOT_LICENSE_NAMES)
def test_not_license_file_names(name: str) -> None:
    assert not is_license_file(f"/{name}") and not is_license_file(f"/lib/{name}")


def test_vectorised_mask_agrees_with_is_license_file() -> None:
    paths = [f"/a/{n}" for n in LICENSE_NAMES + NOT_LICENSE_NAMES] + [None]
    mask = license_file_mask(pa.array(paths, pa.string())).to_pylist()
    assert mask == [is_license_file(p) for p in paths[:-1]] + [None]
    chunked = pa.chunked_array([paths[:10], paths[10:]], pa.string())
    assert license_file_mask(chunked).to_pylist() == mask


@given(st.text(alphabet="abcLICENSEcopyingNOTICE-_./0123 ", min_size=0, max_size=30))
def test_mask_and_function_agree_on_any_path(path: str) -> None:
    assert license_file_mask(pa.array([path])).to_pylist() == [is_license_file(path)]


# ---------------------------------------------------------------- ScanCode on real license texts
@pytest.fixture(scope="module")
def real(texts: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Prepared:
    """One repository per ScanCode license text (LICENSE at its root), through map and reduce."""
    repos = Repos(tmp_path_factory.mktemp("store"))
    return _prepared(repos, [(f"https://x.org/{k}", "/LICENSE", t) for k, t in texts.items()],
                     tmp_path_factory.mktemp("cache"))


@pytest.mark.parametrize(
    ("key", "spdx", "license_type"),
    [
        ("mit", "MIT", "permissive"), ("apache-2.0", "Apache-2.0", "permissive"),
        ("bsd-new", "BSD-3-Clause", "permissive"), ("isc", "ISC", "permissive"),
        ("unlicense", "Unlicense", "permissive"),
        ("gpl-2.0", "GPL-2.0-only", "non_permissive"), ("gpl-3.0", "GPL-3.0-only", "non_permissive"),
        ("lgpl-2.1", "LGPL-2.1-only", "non_permissive"), ("agpl-3.0", "AGPL-3.0-only", "non_permissive"),
        ("mpl-2.0", "MPL-2.0", "non_permissive"), ("epl-2.0", "EPL-2.0", "non_permissive"),
        ("cc-by-sa-4.0", "CC-BY-SA-4.0", "non_permissive"),
    ],
)
def test_real_license_texts(real: Prepared, key: str, spdx: str, license_type: str) -> None:
    found = _classified(real, [(f"https://x.org/{key}", "/src/main.py", "print(1)\n")])
    assert found[f"https://x.org/{key}/src/main.py"] == ([spdx], license_type)


def test_scancode_ran_once_per_distinct_blob(real: Prepared, texts: dict[str, str]) -> None:
    counters = real[3]
    assert counters["license_files"] == counters["license_blobs"] == _detections(counters) == len(texts)
    assert counters.get("scancode_failures", 0) == 0
    # ScanCode's own texts are recognised exactly (stages/license/exact.py): the index is never loaded
    assert counters["exact_matches"] == len(texts) and counters["scancode_index_loads"] == 0


def test_texts_not_known_exactly_go_to_scancode(texts: dict[str, str], repos: Repos, tmp_path: Path) -> None:
    files = [(f"https://x.org/{k}", "/LICENSE", _scanned(texts[k])) for k in ("mit", "gpl-3.0", "bsd-new")]
    prepared = _prepared(repos, files, tmp_path)
    assert prepared[3]["scancode_runs"] == 3 and prepared[3]["exact_matches"] == 0
    assert prepared[3]["scancode_index_loads"] == 1
    found = _classified(prepared, [(o, "/a.py", "") for o, _, _ in files])
    assert [found[f"https://x.org/{k}/a.py"] for k in ("mit", "gpl-3.0", "bsd-new")] == [
        (["MIT"], "permissive"), (["GPL-3.0-only"], "non_permissive"), (["BSD-3-Clause"], "permissive")]


def test_after_the_reduce_scancodes_index_leaves_the_process_and_comes_back_if_asked(
    texts: dict[str, str], repos: Repos, tmp_path: Path
) -> None:
    """The ~1 GB index serves the reduce only: ``after_reduce`` drops it (ScanCode's own module-level
    cache included, which is what holds the memory); a later scan loads it again, same answers."""
    import licensedcode.cache

    from pipeline import resources

    files = [("https://x.org/mit", "/LICENSE", _scanned(texts["mit"]))]
    stage, resource, _, counters = _prepared(repos, files, tmp_path / "a")
    assert counters["scancode_index_loads"] == 1 and licensedcode.cache._LICENSE_CACHE is not None
    from stages.license import candidates

    assert candidates._RULE_SETS  # the index's rule sets for the candidate step, built with it
    assert stage.after_reduce(resource) is True  # it dropped something
    assert not resource.scanner.loaded and licensedcode.cache._LICENSE_CACHE is None
    assert not candidates._RULE_SETS  # they leave with it
    again = _prepared(repos, [("https://x.org/gpl", "/COPYING", _scanned(texts["gpl-3.0"]))], tmp_path / "b")
    assert again[3]["scancode_index_loads"] == 1
    assert _classified(again, [("https://x.org/gpl", "/a.py", "")])["https://x.org/gpl/a.py"] == (
        ["GPL-3.0-only"], "non_permissive")
    assert again[0].after_reduce(again[1]) is True
    assert again[0].after_reduce(again[1]) is False  # nothing left to drop
    assert licensedcode.cache._LICENSE_CACHE is None
    # through the per-process resource table, as every worker runs it between phases
    fresh = repos.stage(tmp_path / "c")
    assert resources.after_reduce(fresh) is False  # this process never set it up: nothing to drop
    resources.resource(fresh)
    assert resources.after_reduce(fresh) is True


# ---------------------------------------------------------------- propagation
def test_licenses_propagate_down_the_tree_and_stay_in_their_repository(
    texts: dict[str, str], repos: Repos, tmp_path: Path
) -> None:
    a, b = "https://github.com/o/a", "https://github.com/o/b"
    prepared = _prepared(repos, [
        (a, "/LICENSE", texts["mit"]),
        (a, "/lib/COPYING", texts["gpl-2.0"]),
        (a, "/lib/vendor/x/LICENSE.txt", texts["apache-2.0"]),
        (b, "/LICENSE", texts["mit"]),  # same blob as a's: scanned once
        (a, "/src/main.py", "print(1)\n"),  # not a license file: the map leaves it out
    ], tmp_path / "cache")
    counters = prepared[3]
    assert counters["license_files"] == 4 and counters["license_blobs"] == 3 and _detections(counters) == 3
    found = _classified(prepared, [
        (a, "/setup.py", ""), (a, "/docs/deep/er/x.md", ""), (a, "/lib/b.py", ""), (a, "/libx/c.py", ""),
        (a, "/lib/vendor/x/y/z.py", ""), (a, "/LICENSE", ""), (b, "/lib/b.py", ""),
        ("https://github.com/o/c", "/a.py", ""),
    ])
    assert found[f"{a}/setup.py"] == (["MIT"], "permissive")
    assert found[f"{a}/docs/deep/er/x.md"] == (["MIT"], "permissive")
    assert found[f"{a}/lib/b.py"] == (["GPL-2.0-only", "MIT"], "non_permissive")
    assert found[f"{a}/libx/c.py"] == (["MIT"], "permissive")  # a sibling folder whose name starts like lib
    assert found[f"{a}/lib/vendor/x/y/z.py"] == (["Apache-2.0", "GPL-2.0-only", "MIT"], "non_permissive")
    assert found[f"{a}/LICENSE"] == (["MIT"], "permissive")
    assert found[f"{b}/lib/b.py"] == (["MIT"], "permissive")
    assert found["https://github.com/o/c/a.py"] == ([], "no_license")


def test_a_license_file_named_after_its_license_is_read(texts: dict[str, str], repos: Repos) -> None:
    """A repository whose only license statement is GPL.txt (or MIT.txt) is classified by it."""
    prepared = _prepared(repos, [("https://x.org/g", "/GPL.txt", texts["gpl-3.0"]),
                                 ("https://x.org/m", "/docs/MIT.txt", texts["mit"])])
    found = _classified(prepared, [("https://x.org/g", "/src/a.py", ""), ("https://x.org/m", "/docs/b.py", "")])
    assert found["https://x.org/g/src/a.py"] == (["GPL-3.0-only"], "non_permissive")
    assert found["https://x.org/m/docs/b.py"] == (["MIT"], "permissive")


def test_apply_sees_only_the_license_files_it_is_given(texts: dict[str, str], repos: Repos) -> None:
    stage, resource, found, _ = _prepared(repos, [("https://x.org/r", "/LICENSE", texts["gpl-3.0"]),
                                                  ("https://x.org/s", "/LICENSE", texts["mit"])])
    only_s = found.filter(pa.compute.equal(found["origin_url"], "https://x.org/s"))
    rows = _rows([("https://x.org/r", "/a.py", ""), ("https://x.org/s", "/b.py", "")])
    assert stage.apply(rows, resource, only_s).kept["license_type"].to_pylist() == ["no_license", "permissive"]
    assert stage.apply(rows, resource, found).kept["path"].to_pylist() == ["/b.py"]


def test_one_stage_object_serves_many_threads_with_different_license_maps(texts: dict[str, str], repos: Repos) -> None:
    """The bug a stateful stage had: two threads of one worker, two partitions, one stage object.
    Here 8 threads each apply their own partition's license files, 50 times over, through one stage
    and one resource; every answer must be its own partition's."""
    gpl, mit = "https://x.org/gpl", "https://x.org/mit"
    stage, resource, found, _ = _prepared(repos, [(gpl, "/COPYING", texts["gpl-3.0"]), (mit, "/LICENSE", texts["mit"])])
    by_origin = {o: found.filter(pa.compute.equal(found["origin_url"], o)) for o in (gpl, mit)}
    wrong: list[str] = []
    barrier = threading.Barrier(8)

    def work(k: int) -> None:
        origin = gpl if k % 2 else mit
        rows = _rows([(origin, f"/f{i}.py", "x = 1\n") for i in range(20)])
        barrier.wait()
        for _ in range(50):
            result = stage.apply(rows, resource, by_origin[origin])
            expected = 0 if origin == gpl else 20
            if result.kept.num_rows != expected or result.dropped.num_rows != 20 - expected:
                wrong.append(origin)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == []


# ---------------------------------------------------------------- SPDX-License-Identifier lines
def test_spdx_lines_in_a_file_apply_to_that_file_alone(repos: Repos) -> None:
    prepared = _prepared(repos, [])
    o = "https://x.org/r"
    found = _classified(prepared, [
        (o, "/dual.py", "# SPDX-License-Identifier: MIT OR GPL-2.0-only\nimport os\n"),
        (o, "/classpath.java", "/* SPDX-License-Identifier: GPL-2.0-only WITH Classpath-exception-2.0 */\n"),
        (o, "/llvm.cpp", "// SPDX-License-Identifier: Apache-2.0 WITH LLVM-exception\n"),
        (o, "/page.html", "<!-- SPDX-License-Identifier: mit -->\n<html></html>\n"),
        (o, "/both.c", "// SPDX-License-Identifier: MIT\n// SPDX-License-Identifier: LGPL-2.1-or-later\n"),
        (o, "/deprecated.c", "/* SPDX-License-Identifier: GPL-2.0+ */\n"),
        (o, "/custom.py", "# SPDX-License-Identifier: LicenseRef-Acme-Proprietary\n"),
        (o, "/plain.py", "print('no header')\n"),
    ])
    assert found[f"{o}/dual.py"] == (["GPL-2.0-only", "MIT"], "permissive")
    assert found[f"{o}/classpath.java"] == (["Classpath-exception-2.0", "GPL-2.0-only"], "non_permissive")
    assert found[f"{o}/llvm.cpp"] == (["Apache-2.0", "LLVM-exception"], "permissive")
    assert found[f"{o}/page.html"] == (["MIT"], "permissive")
    assert found[f"{o}/both.c"] == (["LGPL-2.1-or-later", "MIT"], "non_permissive")
    assert found[f"{o}/deprecated.c"] == (["GPL-2.0-or-later"], "non_permissive")
    assert found[f"{o}/custom.py"] == (["LicenseRef-Acme-Proprietary"], "non_permissive")
    assert found[f"{o}/plain.py"] == ([], "no_license")


def test_invalid_spdx_expressions_are_recorded_as_unknown_and_counted(repos: Repos) -> None:
    stage, resource, found, _ = _prepared(repos, [])
    rows = [("https://x.org/r", f"/f{i}.c", f"// SPDX-License-Identifier: {e}\n") for i, e in
            enumerate(["MIT/GPL", "MIT OR", "(MIT", "GPL-2.0 WITH MIT", "Foo-Bar-License", "LLVM-exception"])]
    ids, types, counters = stage.classify(_rows(rows), resource.policy, folder_licenses(found))
    assert ids.to_pylist() == [[UNKNOWN_SPDX]] * len(rows)
    assert set(types.to_pylist()) == {"non_permissive"}
    assert counters["spdx_invalid"] == len(rows) and counters["spdx_files"] == len(rows)


def test_spdx_tag_past_the_head_is_not_read(repos: Repos) -> None:
    prepared = _prepared(repos, [], spdx_head_bytes=100)
    text = "x = 1\n" * 50 + "# SPDX-License-Identifier: GPL-3.0-only\n"
    assert _classified(prepared, [("o", "/a.py", text)])["o/a.py"] == ([], "no_license")
    cut = "x" * 60 + "\n# SPDX-License-Identifier: MIT OR Apache-2.0\n"  # the head ends inside the tag's line
    assert _classified(prepared, [("o", "/b.py", cut)])["o/b.py"] == ([], "no_license")


def test_spdx_expressions_strip_comment_syntax() -> None:
    head = ("/* SPDX-License-Identifier: MIT */\n# SPDX-License-Identifier:Apache-2.0\n"
            "<!-- SPDX-License-Identifier: (MIT OR Apache-2.0) -->\n\"SPDX-License-Identifier: ISC\",\n")
    assert spdx_expressions(head) == ["MIT", "Apache-2.0", "(MIT OR Apache-2.0)", "ISC"]


# ---------------------------------------------------------------- the permissive decision
@pytest.mark.parametrize(
    ("expression", "permissive"),
    [
        ("MIT OR GPL-2.0-only", True), ("MIT AND GPL-2.0-only", False), ("(MIT OR GPL-3.0-only) AND Apache-2.0", True),
        ("GPL-2.0-only WITH Classpath-exception-2.0", False), ("Apache-2.0 WITH LLVM-exception", True),
        ("LGPL-2.1-only OR MPL-2.0", False), ("CC0-1.0", True), ("LicenseRef-scancode-public-domain", True),
        ("LicenseRef-scancode-unknown", False), ("LicenseRef-scancode-unknown-spdx", False),
        ("LicenseRef-scancode-free-unknown", False), ("CC-BY-NC-4.0", False),
        ("LicenseRef-scancode-proprietary-license", False),
        ("MIT AND LicenseRef-scancode-warranty-disclaimer", True),
        ("GPL-2.0-only OR LicenseRef-scancode-unknown-license-reference", False),
    ],
)
def test_and_or_with_by_meaning(policy: LicensePolicy, expression: str, permissive: bool) -> None:
    normal = policy.normalize(expression)
    assert normal is not None
    assert policy.license_type([normal]) == ("permissive" if permissive else "non_permissive")


def test_ignored_ids_count_for_nothing(policy: LicensePolicy) -> None:
    assert policy.license_type(["LicenseRef-scancode-warranty-disclaimer"]) == "no_license"
    assert policy.license_type(["LicenseRef-scancode-unknown-license-reference", "MIT"]) == "permissive"
    assert policy.ids("MIT AND LicenseRef-scancode-warranty-disclaimer") == ("MIT",)


def test_copyleft_families_are_never_permissive_by_default(policy: LicensePolicy) -> None:
    families = ("GPL-", "LGPL-", "AGPL-", "MPL-", "EPL-", "CC-BY-SA-")
    ids = [i for i in policy.category if i.startswith(families)]
    assert len(ids) > 30
    assert [i for i in ids if policy.id_permissive(i)] == []


def test_allow_and_deny() -> None:
    policy = LicensePolicy(allow=("Artistic-2.0", "mit"), deny=("MIT",))
    assert policy.license_type(["Artistic-2.0"]) == "permissive"
    assert policy.license_type(["MIT"]) == "non_permissive"  # deny wins
    assert policy.license_type(["MIT OR Apache-2.0"]) == "permissive"
    with pytest.raises(PipelineError, match="allow: 'Not-A-License'"):
        LicensePolicy(allow=("Not-A-License",))
    with pytest.raises(PipelineError, match="deny: 'MIT OR ISC'"):
        LicensePolicy(deny=("MIT OR ISC",))


# ---------------------------------------------------------------- the stage
def test_apply_splits_and_fills_the_classified_schema(texts: dict[str, str], repos: Repos) -> None:
    o, p = "https://x.org/gpl", "https://x.org/mit"
    files = [(o, "/a.py", "x = 1\n"), (p, "/b.py", "y = 2\n"), ("https://x.org/none", "/c.py", "z = 3\n")]
    table = _rows(files)
    before = table.to_pylist()
    for permissive_only, kept_paths in ((False, ["/b.py", "/c.py"]), (True, ["/b.py"])):
        stage, resource, found, _ = _prepared(repos, [(o, "/COPYING", texts["gpl-3.0"]), (p, "/LICENSE", texts["mit"])],
                                              permissive_only=permissive_only)
        result = stage.apply(table, resource, found)
        assert result.kept.schema == CLASSIFIED_SCHEMA
        assert result.kept["path"].to_pylist() == kept_paths
        assert result.kept.num_rows + result.dropped.num_rows == table.num_rows
        dropped = {r["path"]: (r["reason"], r["detail"]) for r in result.dropped.to_pylist()}
        assert dropped["/a.py"] == ("non_permissive", "GPL-3.0-only")
        if permissive_only:
            assert dropped["/c.py"] == ("no_license", None)
        assert result.counters["in"] == 3 and result.counters["license_type_permissive"] == 1
    assert table.to_pylist() == before


def test_batches_with_nothing_to_drop_and_empty_batches(texts: dict[str, str], repos: Repos) -> None:
    stage, resource, found, _ = _prepared(repos, [("https://x.org/mit", "/LICENSE", texts["mit"])])
    rows = _rows([("https://x.org/mit", "/a.py", ""), ("https://x.org/mit", "LICENSE", "")])
    result = stage.apply(rows, resource, found)
    assert result.kept["license_type"].to_pylist() == ["permissive"] * 2 and result.dropped.num_rows == 0
    empty = stage.apply(_rows([]), resource, found)
    assert empty.kept.schema == CLASSIFIED_SCHEMA and empty.kept.num_rows == empty.dropped.num_rows == 0


def test_the_stage_is_a_value() -> None:
    """Frozen, hashable by its config, nothing written on it by setup or apply."""
    stage = License(LicenseConfig(), None)
    assert stage == License(LicenseConfig(), None) and hash(stage) == hash(License(LicenseConfig(), None))
    assert stage != License(LicenseConfig(permissive_only=True), None)
    before = dict(vars(stage))
    stage.setup()
    assert vars(stage) == before
    with pytest.raises(AttributeError):
        stage.config = LicenseConfig()  # type: ignore[misc]


# ---------------------------------------------------------------- bad license files
def test_binary_empty_enormous_and_slow_license_files(texts: dict[str, str], repos: Repos, tmp_path: Path) -> None:
    enormous = texts["mit"] + "\n" + "x" * 5000  # over max_scan_bytes: its start is scanned, its rest unknown
    prepared = _prepared(repos, [
        ("bin", "/LICENSE", b"MIT\x00\x01binary"), ("empty", "/LICENSE", " \n"), ("big", "/LICENSE", enormous),
        ("missing", "/COPYING", None),
    ], tmp_path, max_scan_bytes=2000)
    counters = prepared[3]
    assert counters["license_file_problems"] == 3  # binary, empty, missing
    assert counters["license_files_truncated"] == 1 and counters["scancode_runs"] == 1
    found = _classified(prepared, [(o, "/a.py", "") for o in ("bin", "empty", "big", "missing")])
    assert found["bin/a.py"] == ([UNKNOWN], "non_permissive")
    assert found["empty/a.py"] == ([], "no_license")  # an empty file states no license
    assert found["big/a.py"] == (["LicenseRef-scancode-unknown", "MIT"], "non_permissive")
    assert found["missing/a.py"] == ([UNKNOWN], "non_permissive")
    assert len(LicenseCache(tmp_path)) == 0  # a truncated scan is never cached

    slow = _prepared(repos, [("slow", "/LICENSE", _scanned(texts["gpl-2.0"]))], tmp_path, timeout_s=1e-9)
    assert slow[3]["scancode_timeouts"] == slow[3]["scancode_failures"] == 1  # the deadline passed before it began
    ids, kind = _classified(slow, [("slow", "/a.py", "")])["slow/a.py"]
    assert UNKNOWN in ids and kind == "non_permissive"
    assert len(LicenseCache(tmp_path)) == 0  # nor a timed-out one


# ---------------------------------------------------------------- the persistent cache
def test_a_second_run_on_the_same_cache_runs_scancode_zero_times(
    texts: dict[str, str], repos: Repos, tmp_path: Path
) -> None:
    files = [("a", "/LICENSE", texts["mit"]), ("b", "/LICENSE", texts["gpl-2.0"])]
    first = _prepared(repos, files, tmp_path / "cache")[3]
    assert _detections(first) == 2 and first["scancode_cache_hits"] == 0
    assert len(list((tmp_path / "cache").glob("licenses-*.parquet"))) == 1
    second = _prepared(repos, files, tmp_path / "cache")
    assert second[3]["scancode_runs"] == 0 and second[3]["scancode_cache_hits"] == 2
    assert len(list((tmp_path / "cache").glob("licenses-*.parquet"))) == 1  # nothing new to write
    assert _classified(second, [("b", "/x.py", "")])["b/x.py"] == (["GPL-2.0-only"], "non_permissive")


def test_texts_the_cache_knows_are_not_read_again(texts: dict[str, str], repos: Repos, tmp_path: Path) -> None:
    files = [("a", "/LICENSE", texts["mit"]), ("b", "/COPYING", texts["gpl-2.0"])]
    _prepared(repos, files, tmp_path / "cache")
    for blob in (repos.root / "content").iterdir():  # the store loses the blobs: only the cache can answer
        blob.unlink()
    again = _prepared(repos, [(o, p, None) for o, p, _ in files], tmp_path / "cache")
    assert again[3]["scancode_runs"] == 0 and again[3]["license_file_problems"] == 2  # no blob ids: unreadable
    hit = Repos(tmp_path / "store2")
    cached = _prepared(hit, files, tmp_path / "cache")
    for blob in (hit.root / "content").iterdir():
        blob.unlink()
    found, counters, _ = hit.reduce(hit.stage(tmp_path / "cache"), files)  # same blob ids, blobs gone
    assert counters["scancode_runs"] == 0 and counters["scancode_cache_hits"] == 2
    assert counters["license_file_problems"] == 0
    result = _classified((cached[0], cached[1], found, counters), [("a", "/x.py", ""), ("b", "/y.py", "")])
    assert result["a/x.py"] == (["MIT"], "permissive") and result["b/y.py"] == (["GPL-2.0-only"], "non_permissive")


def test_cache_files_are_named_by_content_and_other_versions_are_ignored(tmp_path: Path) -> None:
    one, two = LicenseCache(tmp_path / "1"), LicenseCache(tmp_path / "2")
    for cache in (one, two):
        cache.put("a" * 40, ["MIT"])
        cache.put("b" * 40, ["GPL-2.0-only"])
    assert one.flush().name == two.flush().name  # same entries, same name: workers never collide
    assert one.flush() is None
    old = LicenseCache(tmp_path / "1", scancode_version="0.0.1")
    assert len(old) == 0 and old.get("a" * 40) is None
    merged = LicenseCache(tmp_path / "1")
    merged.put("c" * 40, ["ISC"])
    merged.flush()
    assert LicenseCache(tmp_path / "1").compact() is not None
    assert len(list((tmp_path / "1").glob("licenses-*.parquet"))) == 1
    assert LicenseCache(tmp_path / "1").get("c" * 40) == ("ISC",)


def test_a_corrupt_cache_file_is_ignored_with_a_warning(
    texts: dict[str, str], repos: Repos, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    files = [("a", "/LICENSE", texts["mit"])]
    _prepared(repos, files, tmp_path)
    (good,) = tmp_path.glob("licenses-*.parquet")
    # a file with the right schema whose content was changed (says GPL is MIT's result) ...
    table = pq.read_table(good)
    tampered = table.set_column(2, "expressions", pa.array([["Apache-2.0"]], pa.list_(pa.string())))
    good.unlink()
    pq.write_table(tampered, good)
    # ... and one that is not Parquet at all
    (tmp_path / "licenses-0123456789abcdef0123456789abcdef.parquet").write_bytes(b"PAR1 not really")
    with caplog.at_level(logging.WARNING, logger="stages.license"):
        prepared = _prepared(repos, files, tmp_path)
    assert _detections(prepared[3]) == 1 and prepared[3]["scancode_cache_hits"] == 0
    assert sum("ignored" in r.message for r in caplog.records) == 2
    assert len(LicenseCache(tmp_path)) == 1  # the damaged file was rewritten with the fresh result
    assert _classified(prepared, [("a", "/x.py", "")])["a/x.py"] == (["MIT"], "permissive")
