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
    LICENSE_ORDER,
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


def near_copies_corpus(seed: int, families: int = 8, copies: int = 24) -> tuple[list[pa.Table], dict]:
    """Batches of kept rows with many near duplicates: families of copies of a text, each copy with a
    random share of its words replaced (so some pairs reach the threshold and some do not: chains,
    several clusters per family), unrelated texts, texts too short for a signature; random license
    classes, stars and dates, so that the survivor is decided by the rank, not the blob. Returns the
    batches and each (bucket, row)'s text."""
    rng = random.Random(seed)
    vocabulary = [f"w{i}" for i in range(400)] + ["ü", "名前", "x_1"]
    texts = []
    for _ in range(families):
        base = [rng.choice(vocabulary) for _ in range(rng.randrange(80, 200))]
        for _ in range(copies):
            words = list(base)
            for i in rng.sample(range(len(words)), rng.randrange(0, len(words) // 20)):
                words[i] = rng.choice(vocabulary)
            texts.append(" ".join(words))
    texts += [" ".join(rng.choice(vocabulary) for _ in range(100)) for _ in range(20)] + ["too short", "", "a b c"]
    texts += texts[:3]  # exact copies too (exact dedup would drop them; near dedup must still decide alike)
    rng.shuffle(texts)
    batches, content, start = [], {}, 0
    cuts = sorted(rng.sample(range(1, len(texts)), 4))
    day = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    for bucket, stop in enumerate([*cuts, len(texts)]):
        chunk = texts[start:stop]
        batch = _corpus_rows(chunk, [rng.choice(list(LICENSE_ORDER)) for _ in chunk])
        n = batch.num_rows
        batch = batch.set_column(batch.schema.get_field_index("path"), "path",
                                 pa.array([f"/d{rng.randrange(3)}/é{start + i}.py" for i in range(n)]))
        batch = batch.append_column("star_events_count", pa.array([rng.randrange(3) for _ in range(n)], pa.int64()))
        batch = batch.append_column("revision_date", pa.array(
            [day - dt.timedelta(days=rng.randrange(3)) for _ in range(n)], pa.timestamp("us", tz="UTC")))
        batches.append(batch)
        content.update({(bucket, i): t for i, t in enumerate(chunk)})
        start = stop
    return batches, content


def reference_near_dedup(keys: pa.Table, config: DedupConfig, content: dict | None = None) -> tuple[dict, dict]:
    """The near-dedup reduce as the definition says it, one document at a time, on the rank strings:
    band buckets → ``candidate_pairs`` of each bucket's sorted ranks → verified → union-find, the
    smallest rank of each component its survivor. ``content``: verify on exact Jaccard. Returns
    {(bucket, row): (reason, detail, near_dup_cluster)} and the counters."""
    rows = [r for r in keys.to_pylist() if r["signature"] is not None]
    sig = {r["rank"]: np.frombuffer(r["signature"], dtype=np.uint32)[None, :] for r in rows}
    address = {r["rank"]: (r["bucket"], r["row"]) for r in rows}
    buckets: dict[tuple[int, int], list[str]] = {}
    for rank in sig:
        for band, key in enumerate(band_hashes(sig[rank], config.bands, config.rows)[0].tolist()):
            buckets.setdefault((band, key), []).append(rank)
    pairs = {p for members in buckets.values() if len(members) > 1 for p in candidate_pairs(sorted(members))}

    def similar(a: str, b: str) -> float:
        if content is not None:
            return exact_jaccard(content[address[a]], content[address[b]], config.ngram)
        return float(estimated_jaccard(sig[a], sig[b])[0])

    edges = [(a, b) for a, b in sorted(pairs) if similar(a, b) >= config.threshold]
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    for a, b in edges:
        ra, rb = find(a), find(b)
        parent[max(ra, rb)] = min(ra, rb)
    reason = None if config.keep_near_duplicates else "near_duplicate"
    decisions = {address[n]: (reason, blob_of_rank(find(n)), blob_of_rank(find(n))) for n in parent if find(n) != n}
    clusters = len({find(n) for n in parent})
    return decisions, {"candidate_pairs": len(pairs), "verified_pairs": len(edges), "clusters": clusters}


def near_keys(stage, batches: list[pa.Table]) -> pa.Table:
    """The keys a build's map gives for ``batches`` (bucket = the batch's index)."""
    from pipeline.partition import with_address

    return pa.concat_tables([with_address(stage.map(b, None), i, 0) for i, b in enumerate(batches)])


def decisions_of(reduced: pa.Table) -> dict:
    return {(r["bucket"], r["row"]): (r["reason"], r["detail"], r["near_dup_cluster"]) for r in reduced.to_pylist()}


@pytest.mark.parametrize(("seed", "config"), [(1, DedupConfig()), (2, DedupConfig(threshold=0.8)),
                                              (3, DedupConfig(keep_near_duplicates=True)),
                                              (4, DedupConfig(exact_jaccard=True, threshold=0.75))])
def test_near_dedup_decides_as_the_per_document_definition_on_many_near_copies(seed: int, config: DedupConfig) -> None:
    from stages.dedup import NearDedup

    batches, content = near_copies_corpus(seed)
    stage = NearDedup(config)
    keys = near_keys(stage, batches)
    reduced, counters = _reduce(stage, batches, content_of=lambda b, r: content[(b, r)])
    expected, expected_counters = reference_near_dedup(keys, config, content if config.exact_jaccard else None)
    assert decisions_of(reduced) == expected
    assert {k: counters[k] for k in expected_counters} == expected_counters
    assert expected_counters["clusters"] >= 8 and len(expected) >= 100  # many near copies, many clusters
    ranks = dict(zip(zip(keys["bucket"].to_pylist(), keys["row"].to_pylist(), strict=True), keys["rank"].to_pylist(),
                     strict=True))
    # some survivor's blob is larger than the blob of a member it beats: the rank decided, not the blob
    assert any(blob_of_rank(ranks[address]) < detail for address, (_, detail, _) in expected.items())


# ---------------------------------------------------------------- the vectorised pieces against their per-row versions
def _old_map_signature(sigs: np.ndarray, counts: np.ndarray) -> pa.Array:
    blobs = sigs.view(np.uint8).reshape(len(sigs), -1)
    return pa.array([bytes(blobs[i]) if counts[i] else None for i in range(len(sigs))], pa.binary())


def _old_bucket_pairs(bands: pa.Table) -> pa.Table:
    table = bands.sort_by([("bk", "ascending"), ("node", "ascending")])
    keys, nodes = table["bk"].to_numpy(), table["node"].to_pylist()
    a, b, start = [], [], 0
    for i in range(1, len(keys) + 1):
        if i == len(keys) or keys[i] != keys[start]:
            if i - start > 1:
                for x, y in candidate_pairs(nodes[start:i]):
                    a.append(x)
                    b.append(y)
            start = i
    return pa.table({"a": pa.array(a, pa.int64()), "b": pa.array(b, pa.int64())})


def _old_pick_exact(keys: pa.Table) -> pa.Table:
    from stages.base import Reason
    from stages.dedup import EXACT_DECISIONS, first_of_groups

    table = keys.sort_by([("sha256", "ascending"), ("rank", "ascending")])
    hashes, ranks = table["sha256"].to_pylist(), table["rank"].to_pylist()
    dropped, survivors, current = [], [], ""
    for i, is_first in enumerate(first_of_groups(hashes)):
        if is_first:
            current = blob_of_rank(ranks[i])
        else:
            dropped.append(i)
            survivors.append(current)
    out = table.take(pa.array(dropped, pa.int64()))
    return pa.table({"bucket": out["bucket"], "row": out["row"],
                     "reason": pa.array([Reason.EXACT_DUPLICATE.value] * len(dropped), pa.string()),
                     "detail": pa.array(survivors, pa.string())}, schema=EXACT_DECISIONS)


def test_survivor_rank_equals_the_per_row_definition_on_odd_columns() -> None:
    import stages.dedup as dedup

    ts = pa.timestamp("us", tz="UTC")
    n = 9
    odd = _rows(
        blob_id=[None, *(f"{i:040x}" for i in range(1, n))],
        path=["/a", "/é/ü", "", "/x\x00y", "/p", "/p", "/p", "/p", "/p"],
        star_events_count=pa.array([-5, 10**15 + 3, None, 0, 10**15, 2**62, -(2**63), 2**63 - 1, 7], pa.int64()),
        fork_events_count=pa.array(range(n), pa.uint64()),
        revision_date=pa.array([dt.datetime(1, 1, 1), dt.datetime(9999, 12, 31), None, dt.datetime(1969, 12, 31),
                                *[dt.datetime(2020, 1, 1)] * 5], pa.timestamp("us")),
        visit_date=pa.array([dt.datetime(2021, 1, 1, tzinfo=dt.UTC)] * (n - 1) + [None], ts),
        license_type=["permissive", None, "x", "non_permissive", "no_license", "", "Permissive", None, "permissive"],
    )
    dictionary = odd.set_column(odd.schema.get_field_index("license_type"), "license_type",
                                odd["license_type"].combine_chunks().dictionary_encode())
    rechunked = pa.concat_tables([odd.slice(0, 4), odd.slice(4)]).combine_chunks()
    rechunked = rechunked.set_column(0, "blob_id", pa.chunked_array([odd["blob_id"].combine_chunks()[:2],
                                                                     odd["blob_id"].combine_chunks()[2:]]))
    day = dt.datetime(2024, 1, 2, tzinfo=dt.UTC)
    plain = _rows(revision_date=pa.array([day, None], ts), license_type=["no_license", "permissive"],
                  star_events_count=pa.array([1, None], pa.int32()))
    over = _rows(star_events_count=pa.array([10**15 + 1, 3], pa.int64()),  # a complement of -1 (a sign first)
                 visit_date=pa.array([10**17 + 1, 10**17], pa.int64()).cast(ts))
    mixed = _rows(path=pa.array(["/p", "/q"], pa.large_string()), origin_url=pa.array(["o", None], pa.large_string()),
                  license_type=pa.array(["permissive", "x"], pa.large_string()))
    for table in (odd, dictionary, rechunked, odd.drop_columns(["license_type", "visit_date"]), plain,
                  plain.slice(1), plain.slice(0, 0), _rows(blob_id=[1, 2]), over, mixed):
        rank = survivor_rank(table)
        assert rank.equals(dedup._python_rank(table)) and isinstance(rank, pa.Array) and rank.type == pa.string()
    ranks = survivor_rank(odd)
    assert dedup.blobs_of_ranks(ranks).to_pylist() == [blob_of_rank(r) for r in ranks.to_pylist()]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.one_of(st.integers(-(2**64), 2**64), st.integers(10**15 - 3, 10**15 + 3)),
                          st.one_of(st.integers(-(2**63), 2**63 - 1), st.integers(10**17 - 3, 10**17 + 3))),
                min_size=0, max_size=6))
def test_survivor_rank_formats_any_count_and_date_as_python(values: list[tuple[int, int]]) -> None:
    import stages.dedup as dedup

    n = len(values)
    stars = [v if -(2**63) <= v < 2**63 else None for v, _ in values]
    table = _rows(blob_id=[f"{i:040x}" for i in range(n)], path=["/p"] * n, origin_url=["o"] * n,
                  star_events_count=pa.array(stars, pa.int64()),
                  revision_date=pa.array([d for _, d in values], pa.int64()).cast(pa.timestamp("us")))
    assert survivor_rank(table).equals(dedup._python_rank(table))


def test_map_signatures_and_reading_them_back_equal_the_per_row_versions() -> None:
    import stages.dedup as dedup

    texts = [*_VARIED, "", "a b"]
    sigs, counts = signatures(texts, CONFIG)
    column = dedup.signature_column(sigs, counts)
    assert column.equals(_old_map_signature(sigs, counts)) and column.null_count == int((counts == 0).sum())
    for few in ([], ["x"], ["one two three four five six"]):
        s, c = signatures(few, CONFIG)
        assert dedup.signature_column(s, c).equals(pa.array([bytes(r.view(np.uint8)) if k else None
                                                             for r, k in zip(s, c, strict=True)], pa.binary()))
    valid = column.filter(column.is_valid())
    expected = dedup.signature_matrix(valid.to_pylist())
    for variant in (valid, valid.slice(2), valid.slice(1, 3), pa.chunked_array([valid[:2], valid[2:]]),
                    valid.cast(pa.large_binary()).slice(1)):
        values = variant.to_pylist()
        assert np.array_equal(dedup.signature_rows(variant), dedup.signature_matrix(values))
    assert np.array_equal(dedup.signature_rows(valid), expected)
    assert dedup.signature_rows(valid[:0]).shape == (0, 0)
    uneven = pa.array([b"\x01\x00\x00\x00", b"\x02\x00\x00\x00\x03\x00\x00\x00"], pa.binary())
    with pytest.raises(ValueError):  # what signature_matrix says
        dedup.signature_rows(uneven)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bucket_pairs_equal_the_per_row_loop(seed: int) -> None:
    import stages.dedup as dedup

    rng = random.Random(seed)
    nodes = rng.sample(range(2**62), 400)  # the candidates' numbers: distinct, in any order
    keys = [rng.randrange(2**64) if rng.random() < 0.5 else rng.randrange(20) for _ in nodes]  # singletons, big ones
    bands = pa.table({"bk": pa.array(keys, pa.uint64()), "node": pa.array(nodes, pa.int64())})
    rechunked = pa.concat_tables([bands.slice(0, 100), bands.slice(100)])
    for table in (bands, bands.slice(0, 0), bands.slice(0, 1), rechunked):
        assert dedup.bucket_pairs(table).equals(_old_bucket_pairs(table).cast(dedup.PAIRS))
    a, b = dedup.pair_positions(np.array([0, 10]), np.array([2, 5]))
    assert list(zip(a.tolist(), b.tolist(), strict=True)) == [(0, 1), (10, 11), (10, 12), (10, 13), (10, 14),
                                                             (11, 12), (12, 13), (13, 14)]


def test_band_rows_repeat_each_node_per_band() -> None:
    import stages.dedup as dedup

    texts = ["one two three four five six", "a b c d e f g h i j", "x y z w v u t"]
    sigs, counts = signatures(texts, CONFIG)
    keys = pa.table({"node": pa.array([7, 3, 2**40], pa.int64()), "signature": dedup.signature_column(sigs, counts)})
    rows = dedup.band_rows(keys, bands=CONFIG.bands, rows=CONFIG.rows)
    assert rows["node"].to_pylist() == [r for r in [7, 3, 2**40] for _ in range(CONFIG.bands)]
    first_band = band_hashes(sigs, CONFIG.bands, CONFIG.rows)[:, 0]  # band 0: mixed with 0
    assert rows["bk"].to_numpy().reshape(3, -1)[:, 0].tolist() == first_band.tolist()
    assert dedup.band_rows(keys.slice(0, 0), bands=32, rows=8).num_rows == 0


def test_pick_exact_equals_the_per_row_loop() -> None:
    import stages.dedup as dedup

    rng = random.Random(4)
    n = 300
    ranks = survivor_rank(_rows(blob_id=[f"{rng.randrange(10**9):040x}" for _ in range(n)],
                                path=[f"/ü{rng.randrange(5)}" for _ in range(n)], origin_url=["o"] * n))
    keys = pa.table({"bucket": pa.array([rng.randrange(3) for _ in range(n)], pa.int32()),
                     "row": pa.array(range(n), pa.int64()),
                     "sha256": [f"{rng.randrange(60):064x}" for _ in range(n)], "rank": ranks})
    for table in (keys, keys.slice(0, 0), keys.slice(0, 1), pa.concat_tables([keys.slice(0, 7), keys.slice(7)])):
        assert dedup.pick_exact(table).equals(_old_pick_exact(table))


def test_exact_jaccards_equal_exact_jaccard_pair_by_pair(monkeypatch: pytest.MonkeyPatch) -> None:
    import inspect
    import json.decoder as decoder

    import stages.dedup as dedup

    original = inspect.getsource(decoder)
    lines = original.splitlines()
    rng = random.Random(8)
    texts = [original, original[:3000], "", "a b c", "x " * 3, *_VARIED]
    for changed in (1, 5, 40):
        edited = list(lines)
        for i in rng.sample(range(len(edited)), changed):
            edited[i] = "# changed " + str(rng.random())
        texts.append("\n".join(edited))
    texts = [t for t in texts if "\ud800" not in t]  # Arrow strings are UTF-8: no lone surrogate
    pairs = [(rng.choice(texts), rng.choice(texts)) for _ in range(150)] + [("", ""), ("a b", "a b c d e f")]
    a, b = [x for x, _ in pairs], [y for _, y in pairs]
    for ngram in (1, 5):
        expected = np.array([exact_jaccard(x, y, ngram) for x, y in pairs])
        for chars in (16 << 20, 5000, 1):
            monkeypatch.setattr(dedup, "_SHINGLE_CHARS", chars)
            for column_a, column_b in ((pa.array(a), pa.array(b)),
                                       (pa.chunked_array([pa.array(a[:50]), pa.array(a[50:])]),
                                        pa.array(b, pa.large_string()))):
                got = dedup.exact_jaccards(column_a, column_b, ngram)
                assert got.dtype == np.float64 and np.array_equal(got, expected)
    assert len(dedup.exact_jaccards(pa.array([], pa.string()), pa.array([], pa.string()), 5)) == 0


def test_verify_keeps_the_pairs_the_per_pair_functions_keep() -> None:
    import stages.dedup as dedup

    rng = random.Random(9)
    base = " ".join(f"w{i}" for i in range(200))
    texts = [base] + [base.replace(f"w{rng.randrange(200)}", "z", 1).replace(f"w{rng.randrange(200)}", "q")
                      for _ in range(20)]
    sigs, counts = signatures(texts, CONFIG)
    column = dedup.signature_column(sigs, counts)
    idx = [(rng.randrange(len(texts)), rng.randrange(len(texts))) for _ in range(60)]
    pairs = pa.table({"a": [f"n{i}" for i, _ in idx], "b": [f"n{j}" for _, j in idx],
                      "sig_a": column.take([i for i, _ in idx]), "sig_b": column.take([j for _, j in idx]),
                      "content_a": pa.array([texts[i] for i, _ in idx], pa.large_string()),
                      "content_b": pa.array([texts[j] for _, j in idx], pa.large_string())})
    for threshold in (0.5, 0.9, 0.97):
        estimated = estimated_jaccard(sigs[[i for i, _ in idx]], sigs[[j for _, j in idx]])
        exact = np.array([exact_jaccard(texts[i], texts[j], 5) for i, j in idx])
        for similar, table in ((estimated, pairs.drop_columns(["content_a", "content_b"])), (exact, pairs)):
            kept = dedup.verify(table, threshold=threshold, ngram=5)
            assert kept.equals(pairs.select(["a", "b"]).filter(pa.array(similar >= threshold)))
