"""The lean copy of ScanCode's cache (stages/license/lean.py) gives ScanCode's own answers.

Ground truth: ScanCode's full index read from its own cache file, with ScanCode's own candidate
step; the lean copy is written by ``lean.save`` into a temporary cache folder and read back.
"""

from __future__ import annotations

import gc
import logging
import random

import numpy as np
import pytest

from stages.license import candidates, lean


@pytest.fixture(scope="module")
def full():
    import licensedcode.cache as scancode_cache

    cache = scancode_cache.load_cache_file(lean.scancode_cache_file())
    yield cache
    del cache
    gc.collect()


@pytest.fixture(scope="module")
def lean_copy(full, tmp_path_factory: pytest.TempPathFactory):
    """The lean copy written from ``full`` in a temporary cache folder, and read back."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PIPELINE_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        arrays = candidates.rule_arrays(full.index.tids_by_rid, [s is not None for s in full.index.sets_by_rid])
        folder = lean.save(full, arrays)
        assert folder is not None and folder.parent == lean.root()
        loaded = lean.load()
    assert loaded is not None
    yield loaded
    del loaded
    gc.collect()


def texts() -> list[str]:
    """Texts ScanCode must match approximately (its own, altered), a bundle, and short notices."""
    from licensedcode.models import load_licenses

    db = load_licenses()
    rng = random.Random(11)
    keys = ["mit", "apache-2.0", "bsd-new", "gpl-2.0", "lgpl-3.0", "epl-2.0", "zlib", "artistic-2.0", "x11"]
    out = []
    for key in keys:
        words = db[key].text.split()
        out.append(" ".join(w for w in words if rng.random() > 0.05))
    out.append("\n\n".join(f"--- bundled {k} ---\n{db[k].text}" for k in rng.sample(keys, 3)))
    out += ["SPDX-License-Identifier: MIT OR Apache-2.0", "Licensed under the GPL, version 2 or later; see COPYING.",
            "This file is distributed under a proprietary, all rights reserved license by ACME Corp."]
    return out


def _detections(index, text: str) -> list:
    from licensedcode.detection import detect_licenses

    return [(d.license_expression, d.license_expression_spdx,
             [(m.rule.identifier, m.score(), m.qspan.start, m.qspan.end, m.matcher) for m in d.matches])
            for d in detect_licenses(index=index, query_string=text, unknown_licenses=True)]


def test_every_derived_value_is_scancodes(full) -> None:
    arrays = candidates.rule_arrays(full.index.tids_by_rid, [s is not None for s in full.index.sets_by_rid])
    assert lean.verify(full.index, arrays) is None
    # and the check can fail: one count off
    broken = dict(arrays, counts=arrays["counts"].copy())
    broken["counts"][len(broken["counts"]) // 2] += 1
    assert lean.verify(full.index, broken) is not None


def test_the_lean_index_has_the_full_ones_values(full, lean_copy) -> None:
    cache, arrays = lean_copy
    index, reference = cache.index, full.index
    assert type(index.sets_by_rid) is lean.Derived and len(index.sets_by_rid) == len(reference.sets_by_rid)
    for rid in random.Random(3).sample(range(len(reference.tids_by_rid)), 500):
        for kind in lean.DERIVED:
            mine, theirs = getattr(index, kind)[rid], getattr(reference, kind)[rid]
            assert mine == theirs
    rule_sets, expected = candidates.RuleSets(index, arrays), candidates.RuleSets(reference)
    for name in lean.ARRAYS:
        assert np.array_equal(getattr(rule_sets, name), getattr(expected, name))
    assert index.rid_by_hash == reference.rid_by_hash and len(index.rules_automaton) == len(reference.rules_automaton)


def test_detections_through_the_lean_index_are_scancodes(full, lean_copy) -> None:
    """ScanCode as shipped on its full index against the stage's way: lean index, its candidate step."""
    import licensedcode.cache as scancode_cache
    from licensedcode import match_set

    cache, arrays = lean_copy
    before = scancode_cache._LICENSE_CACHE
    original = candidates._ORIGINAL or match_set.compute_candidates
    try:
        scancode_cache._LICENSE_CACHE = full
        candidates.forget()  # the full index: ScanCode's own function
        theirs = [_detections(full.index, t) for t in texts()]
        scancode_cache._LICENSE_CACHE = cache
        candidates.install(cache.index, arrays)
        assert match_set.compute_candidates is not original
        ours = [_detections(cache.index, t) for t in texts()]
    finally:
        scancode_cache._LICENSE_CACHE = before
        candidates.forget()
    assert ours == theirs
    assert sum(bool(d) for d in theirs) >= len(theirs) - 1  # real detections were compared
    assert any(m[-1] == "3-seq" for d in theirs for _, _, ms in d for m in ms)  # approximate matching ran


def test_a_changed_scancode_cache_gets_a_new_copy(tmp_path, monkeypatch) -> None:
    source = tmp_path / "index_cache"
    source.write_bytes(b"x")
    monkeypatch.setattr(lean, "scancode_cache_file", lambda: source)
    first = lean.key()
    source.write_bytes(b"xy")
    assert lean.key() != first and lean.key() is not None
    source.unlink()
    assert lean.key() is None


def test_a_damaged_copy_is_ignored_in_one_line(full, lean_copy, tmp_path, monkeypatch, caplog) -> None:
    monkeypatch.setenv("PIPELINE_CACHE_DIR", str(tmp_path))
    folder = lean.root() / lean.key()
    folder.mkdir(parents=True)
    (folder / "key.json").write_text("{}")
    for automaton in lean.AUTOMATA:
        (folder / f"{automaton}.pkl").write_bytes(b"not a pickle")
    with caplog.at_level(logging.WARNING, logger="stages.license.lean"):
        assert lean.load() is None
    assert len(caplog.records) == 1 and "unreadable" in caplog.records[0].getMessage()


def test_an_unwritable_cache_folder_is_one_line(full, tmp_path, monkeypatch, caplog) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("PIPELINE_CACHE_DIR", str(blocker))
    arrays = candidates.rule_arrays(full.index.tids_by_rid, [s is not None for s in full.index.sets_by_rid])
    with caplog.at_level(logging.WARNING, logger="stages.license.lean"):
        assert lean.save(full, arrays) is None
    assert len(caplog.records) == 1 and "cannot be written" in caplog.records[0].getMessage()
    assert full.index.rules_automaton is not None and full.index.sets_by_rid[0] is not None  # left whole


def test_a_new_copy_removes_the_copies_of_earlier_states(full, tmp_path, monkeypatch) -> None:
    import json

    monkeypatch.setenv("PIPELINE_CACHE_DIR", str(tmp_path))
    root = lean.root()
    stale, other = root / ("0" * 20), root / ("1" * 20)  # an earlier state of this cache file; another file's
    for folder, source in ((stale, str(lean.scancode_cache_file())), (other, "/elsewhere/index_cache")):
        folder.mkdir(parents=True)
        (folder / "key.json").write_text(json.dumps({"key": folder.name, "format": lean.FORMAT, "source": source}))
    arrays = candidates.rule_arrays(full.index.tids_by_rid, [s is not None for s in full.index.sets_by_rid])
    written = lean.save(full, arrays)
    assert written is not None and written.is_dir()
    assert not stale.exists() and other.is_dir()


def test_the_command_writes_the_copy_once(tmp_path) -> None:
    import os
    import subprocess
    import sys

    env = dict(os.environ, PIPELINE_CACHE_DIR=str(tmp_path))
    runs = [subprocess.run([sys.executable, "-m", "stages.license.lean"], capture_output=True, text=True, env=env,
                           timeout=600) for _ in range(2)]
    assert [r.returncode for r in runs] == [0, 0]
    folder = runs[0].stdout.strip()
    assert runs[1].stdout.strip() == folder and folder.startswith(str(tmp_path))
    assert (tmp_path / "scancode-lean" / folder.rsplit("/", 1)[-1] / "key.json").is_file()
