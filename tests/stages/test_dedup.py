import datetime as dt
import random

import numpy as np
import pyarrow as pa
import pytest
from datasketch import MinHash
from hypothesis import given, settings
from hypothesis import strategies as st

from stages.dedup import (
    DedupConfig,
    band_hashes,
    blob_of_rank,
    candidate_pairs,
    estimated_jaccard,
    exact_jaccard,
    shingle_hashes,
    signatures,
    survivor_rank,
    tokens,
)

CONFIG = DedupConfig()


@settings(max_examples=30, deadline=None)
@given(st.lists(st.text(alphabet="abcdef gh_1.(", min_size=0, max_size=300), min_size=1, max_size=6))
def test_batch_signatures_equal_datasketch_one_document_at_a_time(texts: list[str]) -> None:
    sigs, counts = signatures(texts, CONFIG)
    for text, sig, count in zip(texts, sigs, counts, strict=True):
        hashes = shingle_hashes(text, CONFIG.ngram)
        assert count == len(hashes)
        reference = MinHash(num_perm=256, seed=1, scheme="affine32", hashfunc=lambda x: x)
        if len(hashes):
            reference.update_batch([int(h) for h in hashes])
        assert np.array_equal(reference.hashvalues, sig)


def test_tokens_and_shingles() -> None:
    assert tokens("Foo.bar(BAZ_1, qux)") == ["foo", "bar", "baz_1", "qux"]
    assert len(shingle_hashes("a b c d", 5)) == 0  # fewer than 5 tokens: no shingles
    assert len(shingle_hashes("a b c d e", 5)) == 1
    assert len(shingle_hashes("a a a a a a a a a a", 5)) == 1  # one repeated token: one shingle
    # order matters: the same words in another order are other shingles
    assert set(shingle_hashes("a b c d e f", 5)).isdisjoint(shingle_hashes("f e d c b a", 5))


def test_estimate_tracks_true_jaccard_on_real_near_copies() -> None:
    import inspect
    import json as module

    original = inspect.getsource(module)
    lines = original.splitlines()
    rng = random.Random(3)
    for changed in (5, 40, 150):
        edited = list(lines)
        for i in rng.sample(range(len(edited)), changed):
            edited[i] = "# changed " + str(rng.random())
        copy = "\n".join(edited)
        sigs, _ = signatures([original, copy], CONFIG)
        estimate = float(estimated_jaccard(sigs[:1], sigs[1:])[0])
        assert abs(estimate - exact_jaccard(original, copy, 5)) < 0.08


def test_bands_agree_exactly_when_signatures_do() -> None:
    sigs, _ = signatures(["one two three four five six seven"] * 2 + ["entirely other words in this text"], CONFIG)
    keys = band_hashes(sigs, CONFIG.bands, CONFIG.rows)
    assert keys.shape == (3, 32)
    assert np.array_equal(keys[0], keys[1]) and not np.array_equal(keys[0], keys[2])


def _rows(**columns: list) -> pa.Table:
    n = len(next(iter(columns.values()))) if columns else 2
    base = {"blob_id": [f"{i:040x}" for i in range(n)], "path": ["/p"] * n, "origin_url": ["https://x/o"] * n}
    base.update(columns)
    return pa.table(base)


def test_survivor_order() -> None:
    def ranks(table: pa.Table) -> list[str]:
        return survivor_rank(table).to_pylist()

    ts = pa.timestamp("us", tz="UTC")
    day = [dt.datetime(2024, 1, d, tzinfo=dt.UTC) for d in (1, 2)]
    licensed = ranks(_rows(license_type=["no_license", "permissive", "non_permissive"]))
    assert sorted(range(3), key=lambda i: licensed[i]) == [1, 0, 2]
    starred = ranks(_rows(star_events_count=[3, 10], fork_events_count=[0, 0]))
    assert starred[1] < starred[0]  # more stars first
    forked = ranks(_rows(star_events_count=[5, 5], fork_events_count=[1, 2]))
    assert forked[1] < forked[0]
    dated = ranks(_rows(revision_date=pa.array(day, ts)))
    assert dated[1] < dated[0]  # later revision first
    visited = ranks(_rows(revision_date=pa.array(day[:1] * 2, ts), visit_date=pa.array(day, ts)))
    assert visited[1] < visited[0]
    tie = ranks(_rows())
    assert tie[0] < tie[1]  # then the smallest blob_id
    assert blob_of_rank(tie[1]) == f"{1:040x}"


@pytest.mark.parametrize("n", [2, 3, 10_000])
def test_candidate_pairs_are_linear(n: int) -> None:
    nodes = [f"{i:06d}" for i in range(n)]
    pairs = candidate_pairs(nodes)
    assert len(pairs) == 2 * n - 3
    assert all(a < b for a, b in pairs)
    assert {b for _, b in pairs} == set(nodes[1:])
