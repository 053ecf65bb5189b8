"""ScanCode's candidate step with the hopeless rules left out up front gives ScanCode's own answers.

The texts are ScanCode's own license texts and rules, altered so that ScanCode has to match them
approximately (words dropped, words added, several texts bundled in one file, as Python
distributions bundle the licenses of what they vendor): candidate lists and detections are
compared with ScanCode's unchanged function, query run by query run.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stages.license import candidates


@pytest.fixture(scope="module")
def index():
    """ScanCode's full index, read from its own cache file (whatever this process loaded before)."""
    import licensedcode.cache as scancode_cache

    from stages.license import lean

    cache = scancode_cache.load_cache_file(lean.scancode_cache_file())
    if scancode_cache._LICENSE_CACHE is None:  # ScanCode's functions find their licensing there
        scancode_cache._LICENSE_CACHE = cache
    candidates.install(cache.index)
    return cache.index


@pytest.fixture(scope="module")
def texts() -> list[str]:
    """Texts ScanCode must match approximately: its own, altered."""
    from licensedcode.models import load_licenses

    db = load_licenses()
    rng = random.Random(5)
    keys = ["mit", "apache-2.0", "bsd-new", "gpl-3.0", "lgpl-2.1", "mpl-2.0", "isc", "json", "ofl-1.1", "python"]
    out = []
    for key in keys:
        words = db[key].text.split()
        dropped = [w for w in words if rng.random() > 0.06]  # a few words gone
        added = list(words)
        for _ in range(max(3, len(words) // 40)):  # a few words in
            added.insert(rng.randrange(len(added) + 1), rng.choice(["foo", "project", "vendor", "the", "shall"]))
        out += [" ".join(dropped), " ".join(added)]
    for size in (4,):  # a bundle: several licenses in one file, with headers between them
        chosen = rng.sample(keys, size)
        out.append("\n\n".join(f"=== {k} (bundled library {i}) ===\n{db[k].text}" for i, k in enumerate(chosen)))
    out.append("Licensed under either of the MIT or Apache 2.0 licenses, at your option; portions GPL.")
    return out


def _runs(index, text: str):
    from licensedcode.query import build_query

    query = build_query(query_string=text, idx=index)
    return [query.whole_query_run(), *query.query_runs]


def _plain(found):
    return [(scores, rid, rule.identifier, list(inter)) for scores, rid, rule, inter in found]


def test_the_candidates_are_scancodes_own(index, texts: list[str]) -> None:
    compared = 0
    for text in texts:
        for run in _runs(index, text):
            for top, high in ((10, True), (70, False)):  # as ScanCode asks: whole query, then each run
                theirs = candidates._ORIGINAL(query_run=run, idx=index, matchable_rids=index.approx_matchable_rids,
                                              top=top, high_resemblance=high)
                ours = candidates.compute_candidates(query_run=run, idx=index,
                                                     matchable_rids=index.approx_matchable_rids, top=top,
                                                     high_resemblance=high)
                assert _plain(ours) == _plain(theirs)
                compared += bool(theirs)
    assert compared > 30  # the comparison saw real candidate lists, not only empty ones


def test_a_narrower_rule_set_is_respected(index, texts: list[str]) -> None:
    some = set(list(index.approx_matchable_rids)[::3])
    for run in _runs(index, texts[0]):
        ours = candidates.compute_candidates(query_run=run, idx=index, matchable_rids=some, top=70)
        assert _plain(ours) == _plain(candidates._ORIGINAL(query_run=run, idx=index, matchable_rids=some, top=70))
        assert all(rid in some for _, rid, _, _ in ours)


def test_detections_are_the_same_through_scancode(index, texts: list[str]) -> None:
    from licensedcode import match_set
    from licensedcode.detection import detect_licenses

    def detected(text: str):
        return [(d.license_expression, [(m.rule.identifier, m.score(), m.qspan.start, m.qspan.end, m.matcher)
                                        for m in d.matches])
                for d in detect_licenses(index=index, query_string=text, unknown_licenses=True)]

    assert match_set.compute_candidates is candidates.compute_candidates  # installed: ScanCode calls ours
    for text in texts[-3:]:  # an altered text, the bundle and the short notice
        ours = detected(text)
        match_set.compute_candidates = candidates._ORIGINAL
        try:
            theirs = detected(text)
        finally:
            match_set.compute_candidates = candidates.compute_candidates
        assert ours == theirs and ours


def test_an_index_without_rule_sets_gets_scancodes_function(index, texts: list[str]) -> None:
    candidates.forget()
    try:
        run = _runs(index, texts[0])[0]
        assert _plain(candidates.compute_candidates(query_run=run, idx=index,
                                                    matchable_rids=index.approx_matchable_rids)) == _plain(
            candidates._ORIGINAL(query_run=run, idx=index, matchable_rids=index.approx_matchable_rids))
    finally:
        candidates.install(index)


@given(st.lists(st.one_of(st.floats(min_value=0, max_value=1e6, allow_nan=False),
                          st.integers(0, 10**6).map(lambda n: n / 20),
                          st.integers(0, 10**4).map(lambda n: n / 100),
                          st.sampled_from([0.05, 0.15, 0.25, 0.35, 0.45, 0.55, 0.65, 0.75, 0.85, 0.95, 2.25, 1e-300])),
                min_size=1, max_size=50))
def test_rounding_is_pythons_round(values: list[float]) -> None:
    assert candidates._round1(np.array(values, dtype=np.float64)).tolist() == [round(v, 1) for v in values]


def test_a_run_of_tokens_no_rule_has(index) -> None:
    """Words ScanCode's dictionary lacks (no token id), or only one common word: ScanCode's answer."""
    for text in ("zzqx vlorp quabble frint snorkelwise " * 20, "the " * 50):
        for run in _runs(index, text):
            ours = candidates.compute_candidates(query_run=run, idx=index,
                                                 matchable_rids=index.approx_matchable_rids, top=70)
            theirs = candidates._ORIGINAL(query_run=run, idx=index, matchable_rids=index.approx_matchable_rids,
                                          top=70)
            assert _plain(ours) == _plain(theirs)
