import datetime as dt
import random
import re

import numpy as np
import pyarrow as pa
import pytest
import xxhash
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
    minhash,
    permutations,
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


@pytest.mark.parametrize(("num_perm", "seed"), [(256, 1), (128, 42), (64, 0), (1, 7)])
def test_permutations_are_datasketchs(num_perm: int, seed: int) -> None:
    a, b = MinHash(num_perm=num_perm, seed=seed, scheme="affine32").permutations
    mine = permutations(num_perm, seed)
    assert np.array_equal(mine[0], a) and np.array_equal(mine[1], b)
    assert mine[0].dtype == mine[1].dtype == np.uint32


def test_tokens_and_shingles() -> None:
    assert tokens("Foo.bar(BAZ_1, qux)") == ["foo", "bar", "baz_1", "qux"]
    assert len(shingle_hashes("a b c d", 5)) == 0  # fewer than 5 tokens: no shingles
    assert len(shingle_hashes("a b c d e", 5)) == 1
    assert len(shingle_hashes("a a a a a a a a a a", 5)) == 1  # one repeated token: one shingle
    # order matters: the same words in another order are other shingles
    assert set(shingle_hashes("a b c d e f", 5)).isdisjoint(shingle_hashes("f e d c b a", 5))


def _reference_shingles(text: str, ngram: int) -> np.ndarray:
    """``shingle_hashes`` as it was, one document at a time: the definition the batch path keeps."""
    words = re.findall(r"\w+", text.lower())
    if len(words) < ngram:
        return np.empty(0, dtype=np.uint32)
    token_hashes = np.array([xxhash.xxh3_64_intdigest(w.encode()) for w in words], dtype=np.uint64)
    n = len(words) - ngram + 1
    combined = np.zeros(n, dtype=np.uint64)
    mix = np.uint64(0x9E3779B97F4A7C15)
    for k in range(ngram):
        part = token_hashes[k : k + n]
        combined = (combined * mix) ^ ((part << np.uint64(k + 1)) | (part >> np.uint64(63 - k)))
    return np.unique((combined ^ (combined >> np.uint64(32))).astype(np.uint32))


def _reference_signatures(texts: list[str], config: DedupConfig) -> tuple[np.ndarray, np.ndarray]:
    """One document at a time, in uint64 arithmetic: fmix32, then ``(a * h + b) mod 2**32``, then the minimum."""
    a, b = (p.astype(np.uint64) for p in permutations(config.num_perm, config.seed))
    sigs = np.full((len(texts), config.num_perm), 0xFFFFFFFF, dtype=np.uint64)
    counts = []
    for i, text in enumerate(texts):
        h = _reference_shingles(text, config.ngram).astype(np.uint64)
        counts.append(len(h))
        if len(h):
            m = np.uint64(0xFFFFFFFF)
            h ^= h >> np.uint64(16)
            h = (h * np.uint64(0x85EBCA6B)) & m
            h ^= h >> np.uint64(13)
            h = (h * np.uint64(0xC2B2AE35)) & m
            h ^= h >> np.uint64(16)
            sigs[i] = ((a[:, None] * h[None, :] + b[:, None]) & m).min(axis=1)
    return sigs.astype(np.uint32), np.array(counts, dtype=np.int64)


_VARIED = [
    "",
    "   ...   ",
    "a b c d",  # fewer tokens than the n-gram
    "a b c d e",
    "a a a a a a a a a a a a",  # one repeated token
    "x = y\n" * 50,  # repeated lines
    "İstanbul KELVIN \u212a ǅungla ﬁle straße ÀÉÎ Ωmega",  # lowercasing that changes lengths or leaves ASCII
    "日本語 テキスト の 例 です\u3000ね 漢字_かな １２３ ٣٤٥ ⅷ ²³",  # CJK, ideographic space, other digits
    "e\u0301te\u0301 cafe\u0301 na\u00efve a\u00a0b\u2003c\u200bd·e‿f",  # combining marks, odd spaces
    "lone \ud800 surrogate \udfff x\ud83dy z w v",
    "emoji 🎉 party 🎉 𝔸𝔹ℂ 𐐀𐐨 end of it",  # astral planes, Deseret capital (lowercases to a letter)
    "snake_case CamelCase __dunder__ 0x1F 3.14 a1b2 _ __",
    "\n".join(f"line {i} of {i % 7}" for i in range(300)),
]


def _random_texts(rng: random.Random, count: int) -> list[str]:
    alphabet = "ab cd_E.ñ\u0130\u212aé\u3000中1\n\t"
    return ["".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 60))) for _ in range(count)]


@pytest.mark.parametrize("ngram", [1, 2, 5])
def test_batch_signatures_equal_the_per_document_reference(ngram: int, monkeypatch: pytest.MonkeyPatch) -> None:
    import inspect
    import json as module

    config = DedupConfig(ngram=ngram, num_perm=64, bands=8, rows=8)
    rng = random.Random(ngram)
    texts = _VARIED + _random_texts(rng, 400) + [inspect.getsource(module)] + _VARIED
    expected = _reference_signatures(texts, config)
    for chunk, rows in [(1 << 17, 8), (7, 3), (1, 64), (100, 5)]:  # one block; a text across blocks
        monkeypatch.setattr(minhash, "_CHUNK", chunk)
        monkeypatch.setattr(minhash, "_ROWS", rows)
        sigs, counts = signatures(texts, config)
        assert sigs.flags.c_contiguous and sigs.dtype == np.uint32 and counts.dtype == np.int64
        assert np.array_equal(counts, expected[1]) and np.array_equal(sigs, expected[0])
    for text in texts:
        assert np.array_equal(shingle_hashes(text, ngram), _reference_shingles(text, ngram))
        assert np.array_equal(minhash._shingles([text], ngram)[0], _reference_shingles(text, ngram))
    assert signatures([], config)[0].shape == (0, 64) and len(signatures([], config)[1]) == 0
    for few in (["", ""], ["", "a"], ["a b", "c"]):
        sigs, counts = signatures(few, config)
        assert np.array_equal(sigs, _reference_signatures(few, config)[0])
        assert np.array_equal(counts, _reference_signatures(few, config)[1])


def test_batch_signatures_equal_the_reference_on_real_files_in_big_batches() -> None:
    from pathlib import Path

    texts, size = [], 0
    for path in sorted(Path(random.__file__).parent.glob("*.py")):  # the standard library's sources
        text = path.read_text(encoding="utf-8", errors="surrogateescape")
        texts += [text, text[: len(text) // 3]]  # a near copy too
        size += len(text)
        if size > 1_500_000:
            break
    sigs, counts = signatures(texts, CONFIG)
    expected, expected_counts = _reference_signatures(texts, CONFIG)
    assert counts.sum() > minhash._CHUNK  # more shingles than one numpy block
    assert np.array_equal(counts, expected_counts) and np.array_equal(sigs, expected)


def test_tokens_of_every_code_point_are_the_regexs() -> None:
    # every code point, lowercase or not, word or not, between ASCII words: one-token shingles are
    # exactly the hashes of ``tokens``
    everything = "".join(chr(c) + (" x" if c % 5 == 0 else "") for c in range(0x110000))
    for start in range(0, len(everything), 200_000):
        piece = everything[start : start + 200_000]
        assert np.array_equal(minhash._shingles([piece], 1)[0], _reference_shingles(piece, 1))
        assert np.array_equal(shingle_hashes(piece, 3), _reference_shingles(piece, 3))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(max_size=80), min_size=0, max_size=8), st.integers(1, 4))
def test_batch_shingles_equal_the_reference_on_any_text(texts: list[str], ngram: int) -> None:
    hashes, counts = minhash._shingles(texts, ngram)
    expected = [_reference_shingles(t, ngram) for t in texts]
    assert counts.tolist() == [len(e) for e in expected]
    assert np.array_equal(hashes, np.concatenate([np.empty(0, np.uint32), *expected]))


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


# ---------------------------------------------------------------- the corpus stages, in one process
def _corpus_rows(texts: list[str], license_types: list[str] | None = None) -> pa.Table:
    """Kept rows as the row flow leaves them (the columns dedup reads), one per text."""
    import hashlib

    n = len(texts)
    return _rows(
        blob_id=[hashlib.sha1(t.encode()).hexdigest() for t in texts],
        path=[f"/f{i}.py" for i in range(n)],
        sha256=[hashlib.sha256(t.encode()).hexdigest() for t in texts],
        license_type=license_types or ["permissive"] * n,
        content_id=["0" * 40] * n, snapshot_id=["s"] * n, revision_id=["r"] * n,
        length_bytes=[len(t.encode()) for t in texts],
        content=pa.array(texts, pa.large_string()),
    )


def _reduce(stage, batches: list[pa.Table], dropped: set[tuple[int, int]] = frozenset(), content_of=None):
    """Map each batch (bucket = its index) the way a build does, reduce in one process."""
    from pipeline.local_corpus import LocalCorpus
    from pipeline.partition import with_address

    keys = pa.concat_tables([with_address(stage.map(b, None), i, 0) for i, b in enumerate(batches)])
    keep = [(b, r) not in dropped for b, r in zip(keys["bucket"].to_pylist(), keys["row"].to_pylist(), strict=True)]
    reduced = stage.reduce(LocalCorpus(keys.filter(pa.array(keep)), None, content_of))
    return reduced.rows.table.sort_by([("bucket", "ascending"), ("row", "ascending")]), reduced.counters


def _for(reduced: pa.Table, bucket: int) -> pa.Table:
    return reduced.filter(pa.compute.equal(reduced["bucket"], bucket))


def test_exact_dedup_keeps_the_best_ranked_copy_across_partitions() -> None:
    from stages.dedup import ExactDedup

    stage = ExactDedup()
    one = _corpus_rows(["same text", "unique a"], ["no_license", "permissive"])
    two = _corpus_rows(["same text", "unique b", "same text"], ["permissive", "permissive", "permissive"])
    reduced, _ = _reduce(stage, [one, two])
    # the permissive copies rank first; of the two, the smaller blob_id/path wins
    assert [(b, r) for b, r in zip(reduced["bucket"].to_pylist(), reduced["row"].to_pylist(), strict=True)] == [
        (0, 0), (1, 2)]
    first = stage.apply(one, None, _for(reduced, 0))
    assert first.kept["content"].to_pylist() == ["unique a"]
    assert first.dropped["reason"].to_pylist() == ["exact_duplicate"]
    assert first.dropped["detail"].to_pylist() == [two["blob_id"][0].as_py()]
    assert first.counters == {"in": 2, "kept": 1, "exact_duplicate": 1}


def test_near_dedup_clusters_real_near_copies_and_flags_or_drops_them() -> None:
    import inspect
    import json.decoder as decoder
    import json.encoder as encoder

    from stages.dedup import NearDedup

    original = inspect.getsource(decoder)
    lines = original.splitlines()
    rng = random.Random(5)
    copies = []
    for _ in range(3):
        edited = list(lines)
        for i in rng.sample(range(len(edited)), 8):
            edited[i] = "# edited " + str(rng.random())
        copies.append("\n".join(edited))
    other = inspect.getsource(encoder)
    batch = _corpus_rows([original, copies[0], other, "too short"])
    later = _corpus_rows(copies[1:])
    for keep in (False, True):
        stage = NearDedup(DedupConfig(keep_near_duplicates=keep))
        reduced, counters = _reduce(stage, [batch, later])
        assert counters["clusters"] == 1 and counters["verified_pairs"] >= 3
        assert reduced.num_rows == 3  # every member but the survivor
        first = stage.apply(batch, None, _for(reduced, 0))
        survivor = first.kept["near_dup_cluster"].to_pylist()[0]
        assert survivor in batch["blob_id"].to_pylist()[:2] + later["blob_id"].to_pylist()
        clusters = dict(zip(first.kept["content"].to_pylist(), first.kept["near_dup_cluster"].to_pylist(),
                            strict=True))
        assert clusters[other] == batch["blob_id"][2].as_py() and clusters["too short"] == batch["blob_id"][3].as_py()
        assert first.kept.column_names.index("near_dup_cluster") == first.kept.column_names.index("content") - 1
        if keep:
            assert first.dropped.num_rows == 0 and clusters[copies[0]] == survivor
        else:
            assert set(first.dropped["reason"].to_pylist()) == {"near_duplicate"}
            assert first.kept.num_rows + first.dropped.num_rows == batch.num_rows


def test_near_dedup_skips_rows_an_earlier_stage_dropped_and_verifies_exactly_on_request() -> None:
    from stages.dedup import NearDedup

    text = " ".join(f"word{i}" for i in range(300))
    near = text.replace("word150", "changed")
    batch = _corpus_rows([text, near, text + " "])
    texts = {(0, i): t for i, t in enumerate(batch["content"].to_pylist())}
    stage = NearDedup(DedupConfig(exact_jaccard=True))
    reduced, counters = _reduce(stage, [batch], dropped={(0, 2)}, content_of=lambda b, r: texts[(b, r)])
    assert counters["verified_pairs"] == 1 and reduced["row"].to_pylist() in ([0], [1])  # never the dropped row 2
    survivor = 1 - reduced["row"][0].as_py()
    assert reduced["detail"].to_pylist() == [batch["blob_id"][survivor].as_py()]
