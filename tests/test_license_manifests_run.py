"""Manifest license statements through a whole build (export-git → run): real manifests, real license texts."""

import inspect
import json
from pathlib import Path

import pyarrow.dataset as ds
import pytest

from manifests.manifest import read_manifest
from pipeline.cli import main
from tests.test_dedup_graph import commit

DATA = Path(__file__).parent / "data" / "license-manifests"
CODE = inspect.getsource(json.encoder)  # real code nobody here wrote


def real(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("manifests")
    repos = {
        # swh.model's METADATA is its only license statement: GPL-3.0
        "gplpkg": {"swh.model.egg-info/PKG-INFO": real("swh.model-8.4.1.METADATA"), "swh/model/hashutil.py": CODE},
        # serde's layout: two license files and an OR in Cargo.toml
        "serde": {"LICENSE-MIT": real("cargo.LICENSE-MIT"), "LICENSE-APACHE": real("cargo.LICENSE-APACHE"),
                  "Cargo.toml": real("serde-1.0.197.Cargo.toml"), "src/lib.rs": "pub mod de;\npub mod ser;\n"},
        # mutagen: the GPL-2.0 text in COPYING, GPL-2.0-or-later in PKG-INFO
        "mutagen": {"COPYING": real("mutagen-1.47.0.COPYING"), "PKG-INFO": real("mutagen-1.47.0.PKG-INFO"),
                    "mutagen/_util.py": CODE.replace("encoder", "util")},
        # ms's package.json says MIT; the COPYING says GPL-3.0 (ScanCode's own text)
        "disagree": {"package.json": real("ms.package.json"), "index.js": "module.exports = 1;\n"},
    }
    from licensedcode.models import load_licenses

    repos["disagree"]["COPYING"] = load_licenses()["gpl-3.0"].text
    urls = []
    for name, files in repos.items():
        commit(root / name, files, "2024-01-01T00:00:00Z")
        urls += ["--origin-url", f"https://github.com/o/{name}"]
    export = root / "export"
    assert main(["export-git", *(str(root / n) for n in repos), "--out", str(export), *urls]) == 0
    output = root / "dataset"
    assert main(["run", "--version", "1", "--input", str(export), "--output", str(output), "--workers", "1"]) == 0
    return output


def rows(folder: Path, sub: str) -> dict[str, dict]:
    table = ds.dataset(folder / sub, format="parquet").to_table().to_pylist()
    return {f"{r['origin_url'].rsplit('/', 1)[1]}{r['path']}": r for r in table}


def test_manifest_statements_in_a_whole_build(built: Path) -> None:
    data, ledger = rows(built / "v1", "data"), rows(built / "v1", "dropped")
    gpl = ledger["gplpkg/swh/model/hashutil.py"]
    assert (gpl["stage"], gpl["reason"], gpl["detail"]) == ("license", "non_permissive", "GPL-3.0-only")
    lib = data["serde/src/lib.rs"]
    assert (lib["detected_licenses"], lib["license_type"]) == (["Apache-2.0", "MIT"], "permissive")
    assert ledger["mutagen/mutagen/_util.py"]["detail"] == "GPL-2.0-or-later"
    disagree = ledger["disagree/index.js"]
    assert disagree["reason"] == "non_permissive" and disagree["detail"] == "GPL-3.0-only MIT"
    counters = next(s for s in read_manifest(built / "v1")["stages"] if s["name"] == "license")["counters"]
    assert counters["manifest_files"] == 4 and counters["manifest_licenses"] == 4
    # manifests are parsed, not scanned; license texts are recognised exactly or scanned
    assert counters["license_files"] == 4 and counters["scancode_runs"] + counters["exact_matches"] == 4
