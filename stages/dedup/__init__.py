"""Exact and near deduplication: two corpus stages (``ExactDedup``, ``NearDedup``) and the pure
functions they are made of: the survivor order, MinHash signatures, LSH bands, candidate pairs,
verification, and the decisions drawn from connected components.

Both read the rows every row stage kept. Exact: map = (sha256, survivor rank) per row; reduce =
shuffle on sha256, the smallest rank of each hash survives. Near, over the exact survivors: map =
MinHash signature; reduce = the candidates (rows with a signature) numbered in rank order (a sort:
the band rows, pairs and labels then carry an int64, not the rank) → band keys shuffled on the key →
candidate pairs per LSH bucket → deduplicated → joined with both signatures → verified (estimated or
exact Jaccard) → connected components → every member but the smallest number (rank) of its
component is a near duplicate, naming the survivor's blob. The reduces
are written against ``stages.base.Corpus``; the graph module runs them on Dask. No function here
ever sees more than one piece of the corpus at a time. MinHash itself is in ``minhash``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from stages.base import Corpus, CorpusStage, Reason, Reduced, StageResult, split
from stages.dedup import minhash
from stages.dedup.minhash import (
    band_hashes,
    candidate_pairs,
    estimated_jaccard,
    exact_jaccard,
    permutations,
    shingle_hashes,
    signatures,
    tokens,
)

__all__ = [
    "DedupConfig", "ExactDedup", "NearDedup", "band_hashes", "blob_of_rank", "candidate_pairs", "estimated_jaccard",
    "exact_jaccard", "first_of_groups", "permutations", "shingle_hashes", "signatures", "survivor_rank", "tokens",
]

#: License classes in survivor order (the license stage fills ``license_type``; until then every
#: file counts as ``no_license``).
LICENSE_ORDER = {"permissive": 0, "no_license": 1, "non_permissive": 2}

_MAX_COUNT = 10**15  # stars and forks, complemented so that more sorts first
_MAX_MICROS = 10**17  # timestamps in µs, complemented so that later sorts first
#: The complemented number columns of the rank, in order: (column, maximum, digits).
_COMPLEMENTS = (("star_events_count", _MAX_COUNT, 16), ("fork_events_count", _MAX_COUNT, 16),
                ("revision_date", _MAX_MICROS, 18), ("visit_date", _MAX_MICROS, 18))
_TEXT = (pa.string(), pa.large_string())
_INT64_MAX = 2**63 - 1


@dataclass(frozen=True)
class DedupConfig:
    """Near-dedup parameters (see docs/config.md). ``bands x rows`` must not exceed ``num_perm``."""

    ngram: int = 5
    num_perm: int = 256
    threshold: float = 0.7
    bands: int = 32
    rows: int = 8
    seed: int = 1
    keep_near_duplicates: bool = False
    exact_jaccard: bool = False  # verify candidate pairs on their shingle sets instead of the estimate


def survivor_rank(table: pa.Table) -> pa.Array:
    """A sortable string per row: the smallest is the copy that survives (docs/formats.md, "Which copy survives").

    license_type (permissive < no_license < non_permissive), more stars, more forks, later revision
    date, later visit date, then the smallest blob_id, path and origin URL. Made with Arrow's string
    kernels, column by column; a column of another type than expected, or a number that does not fit
    its width, is formatted in Python (``_python_rank``: the definition, tested equal).
    """
    names = table.column_names
    blob, path, origin = (table[c] for c in ("blob_id", "path", "origin_url"))
    parts = [
        _license_digit(table["license_type"]) if "license_type" in names else pa.scalar("1"),
        *(_complement_digits(table[c], maximum, width) if c in names else pa.scalar(f"{maximum:0{width}d}")
          for c, maximum, width in _COMPLEMENTS),
        _as_text(blob),
    ]
    large = pa.large_string()  # one string type for the joins (they take no mix of string and large_string)
    prefix = pc.binary_join_element_wise(*(p.cast(large) for p in parts), pa.scalar("", large))
    rank = pc.binary_join_element_wise(prefix, _as_text(path).cast(large), _as_text(origin).cast(large),
                                       pa.scalar("\x00", large))
    if isinstance(rank, pa.ChunkedArray):
        rank = rank.combine_chunks() if rank.num_chunks != 1 else rank.chunk(0)
    return rank.cast(pa.string())


def _python_rank(table: pa.Table) -> pa.Array:
    """``survivor_rank`` one row at a time in Python: the definition the Arrow version keeps."""
    n = table.num_rows
    names = table.column_names
    license_rank = (
        [LICENSE_ORDER.get(v, 1) for v in table["license_type"].to_pylist()] if "license_type" in names else [1] * n
    )

    def complement(column: str, maximum: int) -> list[int]:
        if column not in names:
            return [maximum] * n
        values = table[column]
        if pa.types.is_timestamp(values.type):
            values = pc.cast(values, pa.int64())
        return [maximum - (v if v is not None else 0) for v in values.to_pylist()]

    stars, forks = complement("star_events_count", _MAX_COUNT), complement("fork_events_count", _MAX_COUNT)
    revision, visit = complement("revision_date", _MAX_MICROS), complement("visit_date", _MAX_MICROS)
    blob, path, origin = (table[c].to_pylist() for c in ("blob_id", "path", "origin_url"))
    return pa.array(
        [
            f"{license_rank[i]}{stars[i]:016d}{forks[i]:016d}{revision[i]:018d}{visit[i]:018d}"
            f"{blob[i]}\x00{path[i]}\x00{origin[i]}"
            for i in range(n)
        ],
        pa.string(),
    )


def _license_digit(values: pa.ChunkedArray) -> pa.ChunkedArray | pa.Array:
    """``LICENSE_ORDER.get(v, 1)`` of each value, as a string."""
    if values.type not in _TEXT:
        return pa.array([str(LICENSE_ORDER.get(v, 1)) for v in values.to_pylist()], pa.string())
    index = pc.index_in(values, value_set=pa.array(list(LICENSE_ORDER), pa.string()))
    digits = pa.array([str(v) for v in LICENSE_ORDER.values()], pa.string())
    return pc.fill_null(pc.take(digits, index), "1")


def _complement_digits(values: pa.ChunkedArray, maximum: int, width: int) -> pa.Array:
    """``f"{maximum - (v or 0):0{width}d}"`` of each value (timestamps as µs), through numpy when no
    complement is negative (zero padding puts a sign first) or beyond int64 (Arrow's decimal digits,
    padded on the left to ``width``, are then Python's)."""
    if pa.types.is_timestamp(values.type):
        values = pc.cast(values, pa.int64())
    if pa.types.is_signed_integer(values.type) or pa.types.is_unsigned_integer(values.type):
        numbers = np.asarray(pc.fill_null(values, 0).to_numpy())
        if not len(numbers) or (int(numbers.max()) <= maximum and int(numbers.min()) >= maximum - _INT64_MAX):
            complement = np.int64(maximum) - numbers.astype(np.int64)
            return pc.utf8_lpad(pc.cast(pa.array(complement, pa.int64()), pa.string()), width=width, padding="0")
    return pa.array([f"{maximum - (v if v is not None else 0):0{width}d}" for v in values.to_pylist()], pa.string())


def _as_text(values: pa.ChunkedArray) -> pa.ChunkedArray | pa.Array:
    """``f"{v}"`` of each value: strings as they are, null as ``None``."""
    if values.type in _TEXT:
        return pc.fill_null(values, "None") if values.null_count else values
    return pa.array([f"{v}" for v in values.to_pylist()], pa.string())


def first_of_groups(keys: list[str]) -> list[bool]:
    """For rows sorted by (key, rank): True for the first row of each key (its survivor)."""
    return [i == 0 or keys[i] != keys[i - 1] for i in range(len(keys))]


_RANK_PREFIX = 1 + 16 + 16 + 18 + 18


def blob_of_rank(rank: str) -> str:
    """The blob_id inside a ``survivor_rank`` string."""
    return rank[_RANK_PREFIX:].split("\x00", 1)[0]


def blobs_of_ranks(ranks: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """``blob_of_rank`` of each rank (a string column), by Arrow's string kernels (code points, as Python
    slices)."""
    after = pc.utf8_slice_codeunits(ranks, _RANK_PREFIX)
    return pc.list_element(pc.split_pattern(after, "\x00", max_splits=1), 0).cast(pa.string())


# ---------------------------------------------------------------- the corpus stages
#: What ``ExactDedup.map`` gives per kept row.
EXACT_KEYS = pa.schema([pa.field("sha256", pa.string()), pa.field("rank", pa.string())])
#: What ``NearDedup.map`` gives: num_perm little-endian uint32 values; null: too few tokens for near
#: dedup. (Plain binary: Dask's p2p shuffle cannot carry fixed_size_binary.)
NEAR_KEYS = pa.schema([pa.field("rank", pa.string()), pa.field("signature", pa.binary())])
_ADDRESS = [pa.field("bucket", pa.int32()), pa.field("row", pa.int64())]
#: The reduced rows of the exact stage: each dropped row and the blob that survives it.
EXACT_DECISIONS = pa.schema([*_ADDRESS, pa.field("reason", pa.string()), pa.field("detail", pa.string())])
#: The near stage's: every member of a cluster but its survivor; ``reason`` null when near
#: duplicates are kept (and only flagged through ``near_dup_cluster``).
NEAR_DECISIONS = EXACT_DECISIONS.append(pa.field("near_dup_cluster", pa.string()))
_STRING = pa.string()
#: A near-dedup candidate (a key with a signature) is a node: its number in the order of the ranks
#: (``Corpus.ordinal``), so that the band rows, pairs and labels carry an int64, not the rank's string,
#: and the smallest node of a component is the smallest rank.
_NODE = pa.int64()
#: The candidates, numbered: the node, its address, its signature, its blob (what a member of its
#: cluster names, when it survives).
CANDIDATES = pa.schema([pa.field("node", _NODE), *_ADDRESS, pa.field("signature", pa.binary()),
                        pa.field("blob", _STRING)])
BANDS = pa.schema([pa.field("bk", pa.uint64()), pa.field("node", _NODE)])
PAIRS = pa.schema([pa.field("a", _NODE), pa.field("b", _NODE)])
LABELS = pa.schema([pa.field("node", _NODE), pa.field("label", _NODE)])
NODES = pa.schema([pa.field("node", _NODE), *_ADDRESS])
#: Each candidate as a label, with its blob: what the members of the cluster it labels name.
SURVIVORS = pa.schema([pa.field("label", _NODE), pa.field("survivor", _STRING)])


def _side(side: str) -> pa.Schema:
    return pa.schema([pa.field(side, _NODE), pa.field(f"sig_{side}", pa.binary()),
                      pa.field(f"bucket_{side}", pa.int32()), pa.field(f"row_{side}", pa.int64())])


@dataclass(frozen=True)
class ExactDedup(CorpusStage):
    """One copy per SHA-256 of the final content survives: the smallest ``survivor_rank``."""

    name: ClassVar[str] = "exact_dedup"
    reads: ClassVar[str] = "kept"
    key_schema: ClassVar[pa.Schema] = EXACT_KEYS

    def map(self, rows: pa.Table, resource: Any = None) -> pa.Table:
        return pa.table({"sha256": rows["sha256"], "rank": survivor_rank(rows)}, schema=EXACT_KEYS)

    def reduce(self, keys: Corpus) -> Reduced:
        return Reduced(keys.group("sha256", pick_exact, EXACT_DECISIONS), EXACT_DECISIONS)

    def apply(self, rows: pa.Table, resource: Any, reduced: pa.Table) -> StageResult:
        return _apply_decisions(self.name, rows, reduced, Reason.EXACT_DUPLICATE)


@dataclass(frozen=True)
class NearDedup(CorpusStage):
    """MinHash near dedup over the exact survivors; adds ``near_dup_cluster`` (the blob_id of the
    survivor of the row's cluster, its own blob_id when alone)."""

    config: DedupConfig = field(default_factory=DedupConfig)
    name: ClassVar[str] = "near_dedup"
    reads: ClassVar[str] = "kept"
    key_schema: ClassVar[pa.Schema] = NEAR_KEYS

    def map(self, rows: pa.Table, resource: Any = None) -> pa.Table:
        sigs, counts = signatures(rows["content"].to_pylist(), self.config)
        return pa.table({"rank": survivor_rank(rows), "signature": signature_column(sigs, counts)}, schema=NEAR_KEYS)

    def reduce(self, keys: Corpus) -> Reduced:
        c = self.config
        address = pa.schema([*_ADDRESS, *NEAR_KEYS])
        # numbered and persisted in one expression: the sorted keys, ranks and all, are not held after
        survivors = keys.map(with_signature, address).ordinal("rank", "node").map(as_candidates, CANDIDATES).persist()
        bands = survivors.map(partial(band_rows, bands=c.bands, rows=c.rows), BANDS)
        pairs = bands.group("bk", bucket_pairs, PAIRS).group("a", distinct_pairs, PAIRS).persist()
        with_sigs = pairs
        for side in ("a", "b"):
            with_sigs = with_sigs.join(survivors.map(partial(as_side, side=side), _side(side)), on=side)
        if c.exact_jaccard:
            with_sigs = with_sigs.with_content("bucket_a", "row_a", "content_a")
            with_sigs = with_sigs.with_content("bucket_b", "row_b", "content_b")
        edges = with_sigs.map(partial(verify, threshold=c.threshold, ngram=c.ngram), PAIRS).persist()
        n_pairs, n_edges = pairs.count(), edges.count()
        labels, iterations = edges.components("a", "b")
        nodes = survivors.map(as_nodes, NODES)
        members = labels.map(non_roots, LABELS).join(nodes, on="node")
        members = members.join(survivors.map(as_survivors, SURVIVORS), on="label")
        decisions = members.map(partial(near_decisions, keep=c.keep_near_duplicates), NEAR_DECISIONS)
        clusters = labels.map(roots, LABELS).count() if iterations else 0
        counters = {"candidate_pairs": n_pairs, "verified_pairs": n_edges, "clusters": clusters,
                    "label_iterations": iterations}
        return Reduced(decisions, NEAR_DECISIONS, counters)

    def apply(self, rows: pa.Table, resource: Any, reduced: pa.Table) -> StageResult:
        clusters = rows["blob_id"].to_pylist()
        for row, cluster in zip(reduced["row"].to_pylist(), reduced["near_dup_cluster"].to_pylist(), strict=True):
            clusters[row] = cluster or clusters[row]
        at = rows.schema.get_field_index("content")
        rows = rows.add_column(at, "near_dup_cluster", pa.array(clusters, pa.string()))
        return _apply_decisions(self.name, rows, reduced, Reason.NEAR_DUPLICATE)


def _apply_decisions(stage: str, rows: pa.Table, reduced: pa.Table, reason: Reason) -> StageResult:
    """Drop the rows the reduced rows give a reason (``row``: the position in ``rows``)."""
    reasons: list[Reason | None] = [None] * rows.num_rows
    details: list[str | None] = [None] * rows.num_rows
    for row, why, detail in zip(reduced["row"].to_pylist(), reduced["reason"].to_pylist(),
                                reduced["detail"].to_pylist(), strict=True):
        if why is not None:
            reasons[row], details[row] = reason, detail
    kept, dropped, counters = split(stage, rows, reasons, details)
    return StageResult(kept, dropped, counters)


def pick_exact(keys: pa.Table, resource: Any = None) -> pa.Table:
    """Keys of whole sha256 groups: every row but the smallest rank of its hash, naming the survivor."""
    table = keys.sort_by([("sha256", "ascending"), ("rank", "ascending")])
    hashes, n = table["sha256"], table.num_rows
    first = np.ones(n, dtype=bool)
    if hashes.null_count:
        first[:] = first_of_groups(hashes.to_pylist())
    elif n > 1:  # each hash's first row: the one that differs from the row before
        first[1:] = pc.not_equal(hashes.slice(1), hashes.slice(0, n - 1)).to_numpy(zero_copy_only=False)
    dropped = np.flatnonzero(~first)
    group = np.maximum.accumulate(np.where(first, np.arange(n), 0))  # the first row of each row's hash
    out = table.take(pa.array(dropped, pa.int64()))
    survivors = blobs_of_ranks(pc.take(table["rank"], pa.array(group[dropped], pa.int64())))
    return pa.table({"bucket": out["bucket"], "row": out["row"],
                     "reason": pa.array([Reason.EXACT_DUPLICATE.value] * len(dropped), pa.string()),
                     "detail": survivors}, schema=EXACT_DECISIONS)


def with_signature(keys: pa.Table, resource: Any = None) -> pa.Table:
    """The keys that have a signature (enough tokens for near dedup)."""
    return keys.filter(pc.is_valid(keys["signature"]))


def signature_column(sigs: np.ndarray, counts: np.ndarray) -> pa.Array:
    """``NearDedup.map``'s signature column: each row of ``sigs`` as its bytes (little-endian), null
    where the text has no shingles (``counts`` 0). Built from buffers: the kept rows' bytes, the
    offsets of equal-sized values, a validity bitmap."""
    n = len(sigs)
    valid = np.asarray(counts) != 0
    rows = np.ascontiguousarray(sigs[valid])
    width = rows.shape[1] * rows.itemsize
    if width * len(rows) >= 1 << 31:  # more than 32-bit offsets hold: as it always was
        blobs = sigs.view(np.uint8).reshape(n, -1)
        return pa.array([bytes(blobs[i]) if valid[i] else None for i in range(n)], pa.binary())
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(valid * np.int32(width), out=offsets[1:])
    null_count = n - int(valid.sum())
    bitmap = pa.py_buffer(np.packbits(valid, bitorder="little").tobytes()) if null_count else None
    return pa.Array.from_buffers(pa.binary(), n, [bitmap, pa.py_buffer(offsets), pa.py_buffer(rows)],
                                 null_count=null_count)


def signature_matrix(values: list[bytes]) -> np.ndarray:
    """``docs x num_perm`` uint32 from the signatures' bytes."""
    if not values:
        return np.empty((0, 0), np.uint32)
    return np.frombuffer(b"".join(values), dtype=np.uint32).reshape(len(values), -1)


_OFFSETS = {pa.binary(): np.dtype(np.int32), pa.large_binary(): np.dtype(np.int64)}


def signature_rows(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """``signature_matrix`` of a binary column without a Python object per value: its data buffer, read
    in place, when no value is null and all have one length (else ``signature_matrix`` of its values)."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    n = len(array)
    if n and array.null_count == 0 and array.type in _OFFSETS:
        _, offsets, data = array.buffers()
        kind = _OFFSETS[array.type]
        ends = np.frombuffer(offsets, dtype=kind, count=n + 1, offset=array.offset * kind.itemsize)
        width = int(ends[1] - ends[0])
        if width % 4 == 0 and width and np.all(np.diff(ends) == width):
            return np.frombuffer(data, dtype=np.uint32, count=n * width // 4, offset=int(ends[0])).reshape(n, -1)
    return signature_matrix(array.to_pylist())


def as_candidates(keys: pa.Table, resource: Any = None) -> pa.Table:
    """The numbered keys (``node``: the rank's place among the candidates) without their rank, which only
    the blob in it is needed of now."""
    return pa.table([keys["node"], keys["bucket"], keys["row"], keys["signature"], blobs_of_ranks(keys["rank"])],
                    schema=CANDIDATES)


def band_rows(keys: pa.Table, resource: Any = None, *, bands: int, rows: int) -> pa.Table:
    """One row per (document, band): the band's key mixed with its number, and the document's node."""
    hashed = band_hashes(signature_rows(keys["signature"]), bands, rows)
    with np.errstate(over="ignore"):
        hashed = hashed ^ (np.arange(bands, dtype=np.uint64) * np.uint64(0xD6E8FEB86659FD93))[None, :]
    nodes = np.repeat(keys["node"].to_numpy(), bands)
    return pa.table({"bk": pa.array(hashed.reshape(-1), pa.uint64()), "node": pa.array(nodes, _NODE)}, schema=BANDS)


def bucket_pairs(bands: pa.Table, resource: Any = None) -> pa.Table:
    """Candidate pairs of every LSH bucket in ``bands`` (linear in each bucket's size). Only the rows of
    buckets with more than one member are sorted by (key, node), as the pairs need: numpy's sort of
    the keys finds them (Arrow's sort of every row by both columns took twice as long)."""
    keys = bands["bk"].to_numpy()
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]]) if len(keys) else np.empty(0, np.int64)
    sizes = np.diff(np.r_[starts, len(keys)])
    shared = order[np.repeat(sizes > 1, sizes)]  # the rows of buckets with more than one member
    table = bands.take(pa.array(shared, pa.int64())).sort_by([("bk", "ascending"), ("node", "ascending")])
    keys = table["bk"].to_numpy()
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]]) if len(keys) else np.empty(0, np.int64)
    sizes = np.diff(np.r_[starts, len(keys)])
    a, b = pair_positions(starts[sizes > 1], sizes[sizes > 1])
    nodes = table["node"]
    return pa.table({"a": pc.take(nodes, pa.array(a)), "b": pc.take(nodes, pa.array(b))}).cast(PAIRS)


def pair_positions(starts: np.ndarray, sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``candidate_pairs`` of buckets of rows ``starts[k]`` to ``starts[k] + sizes[k]`` (each at least 2),
    as positions, bucket after bucket, in its order: the star (first, each other), then the chain
    (each member after the first with its next)."""
    starts, sizes = np.asarray(starts, dtype=np.int64), np.asarray(sizes, dtype=np.int64)
    lengths = 2 * sizes - 3  # pairs per bucket: size - 1 in the star, size - 2 in the chain
    total = int(lengths.sum())
    if not total:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    first = np.repeat(np.cumsum(lengths) - lengths, lengths)
    j = np.arange(total, dtype=np.int64) - first  # the pair's place in its bucket's list
    start, star = np.repeat(starts, lengths), np.repeat(sizes - 1, lengths)
    in_star = j < star
    a = np.where(in_star, start, start + 1 + (j - star))
    b = np.where(in_star, start + 1 + j, start + 2 + (j - star))
    return a, b


def distinct_pairs(pairs: pa.Table, resource: Any = None) -> pa.Table:
    """Each pair once (a pair found in several bands)."""
    if pairs.num_rows == 0:
        return pairs
    return pairs.group_by(["a", "b"], use_threads=False).aggregate([]).select(["a", "b"]).sort_by(
        [("a", "ascending"), ("b", "ascending")])


def as_side(keys: pa.Table, resource: Any = None, *, side: str) -> pa.Table:
    """The candidates renamed to one side of a pair: ``a``, ``sig_a``, ``bucket_a``, ``row_a``."""
    return pa.table([keys["node"], keys["signature"], keys["bucket"], keys["row"]], schema=_side(side))


def verify(pairs: pa.Table, resource: Any = None, *, threshold: float, ngram: int) -> pa.Table:
    """The candidate pairs whose Jaccard reaches ``threshold``: exact on the two files' shingle sets
    when the pairs carry ``content_a`` / ``content_b`` (``exact_jaccards``: each distinct text of the
    piece shingled once), else estimated from the signatures (the share of equal MinHash values, read
    from the columns' buffers)."""
    if pairs.num_rows == 0:
        return pairs.select(["a", "b"])
    if "content_a" in pairs.column_names:
        similar = exact_jaccards(pairs["content_a"], pairs["content_b"], ngram)
    else:
        similar = estimated_jaccard(signature_rows(pairs["sig_a"]), signature_rows(pairs["sig_b"]))
    return pairs.select(["a", "b"]).filter(pa.array(similar >= threshold))


_SHINGLE_CHARS = 16 << 20  # characters of text per ``_shingles`` call: a map batch's worth


def exact_jaccards(texts_a: pa.Array | pa.ChunkedArray, texts_b: pa.Array | pa.ChunkedArray, ngram: int) -> np.ndarray:
    """``exact_jaccard`` of each pair ``(texts_a[i], texts_b[i])`` (two string columns), as float64, with
    each distinct text shingled once (a text is in every pair of its bucket's star; Arrow's hash table
    finds the distinct texts, ``minhash._shingles`` shingles them as a batch). Per pair, the smaller of
    the two sorted shingle sets is looked up in the other (``searchsorted``), and the union's size is
    ``|A| + |B| - |A & B|``: the same integers, so the same quotient, as ``exact_jaccard``."""
    n = len(texts_a)
    both = pa.chunked_array([*_chunks(texts_a), *_chunks(texts_b)], pa.large_string())
    if both.null_count:  # no text to shingle: fails as ``exact_jaccard`` does
        return np.array([exact_jaccard(a, b, ngram) for a, b in zip(
            texts_a.to_pylist(), texts_b.to_pylist(), strict=True)], dtype=np.float64)
    ids, distinct = _distinct(both)
    hashes, starts = _shingle_sets(distinct, ngram)
    bounds = starts.tolist()
    common = np.zeros(n, dtype=np.int64)
    for i, (a, b) in enumerate(zip(ids[:n].tolist(), ids[n:].tolist(), strict=True)):
        if bounds[a + 1] - bounds[a] > bounds[b + 1] - bounds[b]:
            a, b = b, a
        if bounds[a] == bounds[a + 1] or bounds[b] == bounds[b + 1]:
            continue
        query, other = hashes[bounds[a] : bounds[a + 1]], hashes[bounds[b] : bounds[b + 1]]
        at = np.searchsorted(other, query)
        at[at == len(other)] = len(other) - 1
        common[i] = np.count_nonzero(other[at] == query)
    sizes = np.diff(starts)
    union = sizes[ids[:n]] + sizes[ids[n:]] - common
    similar = np.ones(n, dtype=np.float64)  # two empty sets: 1.0, as ``exact_jaccard``
    np.divide(common, union, out=similar, where=union > 0)
    return similar


def _chunks(texts: pa.Array | pa.ChunkedArray) -> list[pa.Array]:
    """A string column's chunks, as ``large_string``."""
    texts = texts.cast(pa.large_string())
    return texts.chunks if isinstance(texts, pa.ChunkedArray) else [texts]


def _distinct(texts: pa.ChunkedArray) -> tuple[np.ndarray, list[str]]:
    """Each text's number among the distinct texts (int64), and the distinct texts."""
    encoded = texts.dictionary_encode()
    chunks = encoded.chunks
    if not chunks:
        return np.empty(0, dtype=np.int64), []
    dictionary = chunks[-1].dictionary
    if not all(c.dictionary.equals(dictionary) for c in chunks[:-1]):  # one dictionary for all chunks, or one chunk
        encoded = pa.concat_arrays(texts.chunks).dictionary_encode()
        chunks, dictionary = [encoded], encoded.dictionary
    ids = np.concatenate([c.indices.to_numpy().astype(np.int64) for c in chunks])
    return ids, dictionary.to_pylist()


def _shingle_sets(texts: list[str], ngram: int) -> tuple[np.ndarray, np.ndarray]:
    """Every text's ``shingle_hashes`` concatenated (uint32) and where each starts (``len(texts) + 1``):
    the batch path of ``signatures`` (``minhash._shingles``, tested equal text by text), a map batch's
    worth of characters at a time."""
    pieces, counts = [], []
    begin = 0
    while begin < len(texts):
        stop, chars = begin, 0
        while stop < len(texts) and (stop == begin or chars + len(texts[stop]) <= _SHINGLE_CHARS):
            chars += len(texts[stop])
            stop += 1
        hashes, sizes = minhash._shingles(texts[begin:stop], ngram)
        pieces.append(hashes)
        counts.append(sizes)
        begin = stop
    starts = np.zeros(len(texts) + 1, dtype=np.int64)
    if texts:
        np.cumsum(np.concatenate(counts), out=starts[1:])
    return np.concatenate([np.empty(0, np.uint32), *pieces]), starts


def non_roots(labels: pa.Table, resource: Any = None) -> pa.Table:
    """The nodes that are not the smallest of their component."""
    return labels.filter(pc.not_equal(labels["node"], labels["label"]))


def roots(labels: pa.Table, resource: Any = None) -> pa.Table:
    """The smallest node of each component (its survivor)."""
    return labels.filter(pc.equal(labels["node"], labels["label"]))


def as_nodes(keys: pa.Table, resource: Any = None) -> pa.Table:
    """Each candidate's node, with its address."""
    return pa.table([keys["node"], keys["bucket"], keys["row"]], schema=NODES)


def as_survivors(keys: pa.Table, resource: Any = None) -> pa.Table:
    """Each candidate's node as a label, with its blob (the ``detail`` of the members of its cluster)."""
    return pa.table([keys["node"], keys["blob"]], schema=SURVIVORS)


def near_decisions(members: pa.Table, resource: Any = None, *, keep: bool) -> pa.Table:
    """A decision per cluster member (not its survivor, whose blob is ``survivor``): dropped, or kept and
    flagged with ``keep``."""
    survivor = members["survivor"]
    n = members.num_rows
    reason = pa.nulls(n, pa.string()) if keep else pa.array([Reason.NEAR_DUPLICATE.value] * n, pa.string())
    return pa.table({"bucket": members["bucket"], "row": members["row"], "reason": reason, "detail": survivor,
                     "near_dup_cluster": survivor}, schema=NEAR_DECISIONS)
