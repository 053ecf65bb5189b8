"""Exact and near deduplication: two corpus stages (``ExactDedup``, ``NearDedup``) and the pure
functions they are made of: the survivor order, MinHash signatures, LSH bands, candidate pairs,
verification, and the decisions drawn from connected components.

Both read the rows every row stage kept. Exact: map = (sha256, survivor rank) per row; reduce =
shuffle on sha256, the smallest rank of each hash survives. Near, over the exact survivors: map =
MinHash signature; reduce = band keys shuffled on the key → candidate pairs per LSH bucket →
deduplicated → joined with both signatures → verified (estimated or exact Jaccard) → connected
components → every member but the smallest rank of its component is a near duplicate. The reduces
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
    date, later visit date, then the smallest blob_id, path and origin URL.
    """
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


def first_of_groups(keys: list[str]) -> list[bool]:
    """For rows sorted by (key, rank): True for the first row of each key (its survivor)."""
    return [i == 0 or keys[i] != keys[i - 1] for i in range(len(keys))]


_RANK_PREFIX = 1 + 16 + 16 + 18 + 18


def blob_of_rank(rank: str) -> str:
    """The blob_id inside a ``survivor_rank`` string."""
    return rank[_RANK_PREFIX:].split("\x00", 1)[0]


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
BANDS = pa.schema([pa.field("bk", pa.uint64()), pa.field("node", _STRING)])
PAIRS = pa.schema([pa.field("a", _STRING), pa.field("b", _STRING)])
LABELS = pa.schema([pa.field("node", _STRING), pa.field("label", _STRING)])
NODES = pa.schema([pa.field("node", _STRING), *_ADDRESS])


def _side(side: str) -> pa.Schema:
    return pa.schema([pa.field(side, _STRING), pa.field(f"sig_{side}", pa.binary()),
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
        blobs = sigs.view(np.uint8).reshape(len(sigs), -1)
        signature = pa.array([bytes(blobs[i]) if counts[i] else None for i in range(len(sigs))], pa.binary())
        return pa.table({"rank": survivor_rank(rows), "signature": signature}, schema=NEAR_KEYS)

    def reduce(self, keys: Corpus) -> Reduced:
        c = self.config
        address = pa.schema([*_ADDRESS, *NEAR_KEYS])
        survivors = keys.map(with_signature, address).persist()
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
    hashes, ranks = table["sha256"].to_pylist(), table["rank"].to_pylist()
    first = first_of_groups(hashes)
    dropped, survivors, current = [], [], ""
    for i, is_first in enumerate(first):
        if is_first:
            current = blob_of_rank(ranks[i])
        else:
            dropped.append(i)
            survivors.append(current)
    out = table.take(pa.array(dropped, pa.int64()))
    return pa.table({"bucket": out["bucket"], "row": out["row"],
                     "reason": pa.array([Reason.EXACT_DUPLICATE.value] * len(dropped), pa.string()),
                     "detail": pa.array(survivors, pa.string())}, schema=EXACT_DECISIONS)


def with_signature(keys: pa.Table, resource: Any = None) -> pa.Table:
    """The keys that have a signature (enough tokens for near dedup)."""
    return keys.filter(pc.is_valid(keys["signature"]))


def signature_matrix(values: list[bytes]) -> np.ndarray:
    """``docs x num_perm`` uint32 from the signatures' bytes."""
    if not values:
        return np.empty((0, 0), np.uint32)
    return np.frombuffer(b"".join(values), dtype=np.uint32).reshape(len(values), -1)


def band_rows(keys: pa.Table, resource: Any = None, *, bands: int, rows: int) -> pa.Table:
    """One row per (document, band): the band's key mixed with its number, and the document's rank."""
    hashed = band_hashes(signature_matrix(keys["signature"].to_pylist()), bands, rows)
    with np.errstate(over="ignore"):
        hashed = hashed ^ (np.arange(bands, dtype=np.uint64) * np.uint64(0xD6E8FEB86659FD93))[None, :]
    nodes = np.repeat(np.asarray(keys["rank"].to_pylist(), dtype=object), bands)
    return pa.table({"bk": pa.array(hashed.reshape(-1), pa.uint64()), "node": pa.array(nodes.tolist(), _STRING)},
                    schema=BANDS)


def bucket_pairs(bands: pa.Table, resource: Any = None) -> pa.Table:
    """Candidate pairs of every LSH bucket in ``bands`` (linear in each bucket's size)."""
    table = bands.sort_by([("bk", "ascending"), ("node", "ascending")])
    keys, nodes = table["bk"].to_numpy(), table["node"].to_pylist()
    a, b = [], []
    start = 0
    for i in range(1, len(keys) + 1):
        if i == len(keys) or keys[i] != keys[start]:
            if i - start > 1:
                for x, y in candidate_pairs(nodes[start:i]):
                    a.append(x)
                    b.append(y)
            start = i
    return pa.table({"a": pa.array(a, _STRING), "b": pa.array(b, _STRING)}, schema=PAIRS)


def distinct_pairs(pairs: pa.Table, resource: Any = None) -> pa.Table:
    """Each pair once (a pair found in several bands)."""
    if pairs.num_rows == 0:
        return pairs
    return pairs.group_by(["a", "b"], use_threads=False).aggregate([]).select(["a", "b"]).sort_by(
        [("a", "ascending"), ("b", "ascending")])


def as_side(keys: pa.Table, resource: Any = None, *, side: str) -> pa.Table:
    """The keys renamed to one side of a pair: ``a``, ``sig_a``, ``bucket_a``, ``row_a``."""
    return pa.table([keys["rank"], keys["signature"], keys["bucket"], keys["row"]], schema=_side(side))


def verify(pairs: pa.Table, resource: Any = None, *, threshold: float, ngram: int) -> pa.Table:
    """The candidate pairs whose Jaccard reaches ``threshold``: exact on the two files' shingle sets
    when the pairs carry ``content_a`` / ``content_b``, else estimated from the signatures (the
    share of equal MinHash values)."""
    if pairs.num_rows == 0:
        return pairs.select(["a", "b"])
    if "content_a" in pairs.column_names:
        similar = np.array([exact_jaccard(x, y, ngram) for x, y in zip(
            pairs["content_a"].to_pylist(), pairs["content_b"].to_pylist(), strict=True)])
    else:
        similar = estimated_jaccard(signature_matrix(pairs["sig_a"].to_pylist()),
                                    signature_matrix(pairs["sig_b"].to_pylist()))
    return pairs.select(["a", "b"]).filter(pa.array(similar >= threshold))


def non_roots(labels: pa.Table, resource: Any = None) -> pa.Table:
    """The nodes that are not the smallest of their component."""
    return labels.filter(pc.not_equal(labels["node"], labels["label"]))


def roots(labels: pa.Table, resource: Any = None) -> pa.Table:
    """The smallest node of each component (its survivor)."""
    return labels.filter(pc.equal(labels["node"], labels["label"]))


def as_nodes(keys: pa.Table, resource: Any = None) -> pa.Table:
    """Each survivor of exact dedup by rank, with its address."""
    return pa.table([keys["rank"], keys["bucket"], keys["row"]], schema=NODES)


def near_decisions(members: pa.Table, resource: Any = None, *, keep: bool) -> pa.Table:
    """A decision per cluster member (not its survivor): dropped, or kept and flagged with ``keep``."""
    survivor = pa.array([blob_of_rank(r) for r in members["label"].to_pylist()], pa.string())
    n = members.num_rows
    reason = pa.nulls(n, pa.string()) if keep else pa.array([Reason.NEAR_DUPLICATE.value] * n, pa.string())
    return pa.table({"bucket": members["bucket"], "row": members["row"], "reason": reason, "detail": survivor,
                     "near_dup_cluster": survivor}, schema=NEAR_DECISIONS)
