"""The ``Corpus`` operations on Dask (``DaskCorpus``, a cluster of two worker processes of two threads
each, several partitions) and in one process (``LocalCorpus``): the same answers."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import dask.dataframe as dd
import pyarrow as pa
import pytest

from pipeline.graph.cluster import dask_client, to_arrow, to_pandas
from pipeline.graph.corpus import CorpusContext, DaskCorpus
from pipeline.local_corpus import LocalCorpus
from stages.dedup import DedupConfig, NearDedup


@pytest.fixture(scope="module")
def client() -> Iterator[object]:
    with dask_client(workers=2, scheduler=None, threads=2) as client:
        yield client


def dask_corpus(table: pa.Table, partitions: int, stage: object, tmp_path: Path, **context: int) -> DaskCorpus:
    frame = dd.from_pandas(to_pandas(table), npartitions=partitions, sort=False)
    return DaskCorpus(frame, table.schema, stage, CorpusContext(str(tmp_path), lambda _: None, **context))


def unique_strings(seed: int, n: int) -> list[str]:
    """Distinct strings in a random order: empty, prefixes of each other, NUL, 1- to 4-byte UTF-8."""
    rng = random.Random(seed)
    alphabet = "ab\x00Zé\u0130中\U0001f600\x7f0"
    values = {"".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 9))) for _ in range(n)}
    values = sorted(values)
    rng.shuffle(values)
    return values


def table_of(values: list[str]) -> pa.Table:
    return pa.table({"key": pa.array(values, pa.string()), "payload": pa.array(range(len(values)), pa.int64())})


def places(table: pa.Table) -> dict[str, int]:
    """key → its ordinal, each key once."""
    pairs = list(zip(table["key"].to_pylist(), table["n"].to_pylist(), strict=True))
    assert len({k for k, _ in pairs}) == len(pairs)
    return dict(pairs)


def every_997th(table: pa.Table, resource: object = None) -> pa.Table:
    """The rows whose payload is a multiple of 997 (most pieces keep none)."""
    return table.filter(pa.array([p % 997 == 0 for p in table["payload"].to_pylist()], pa.bool_()))


@pytest.mark.parametrize("seed", [0, 1])
def test_local_ordinal_is_the_place_in_python_order(seed: int) -> None:
    values = unique_strings(seed, 3000)
    out = LocalCorpus(table_of(values)).ordinal("key", "n").table
    assert out.schema.field("n").type == pa.int64()
    assert places(out) == {v: i for i, v in enumerate(sorted(values))}
    assert dict(zip(out["key"].to_pylist(), out["payload"].to_pylist(), strict=True)) == {
        v: i for i, v in enumerate(values)}  # each row keeps its other columns
    assert LocalCorpus(table_of([])).ordinal("key", "n").table.num_rows == 0


@pytest.mark.parametrize("partitions", [1, 3, 8])
def test_dask_ordinal_is_the_place_in_python_order_for_any_partitioning(client: object, tmp_path: Path,
                                                                        partitions: int) -> None:
    values = unique_strings(partitions, 3000)
    corpus = dask_corpus(table_of(values), partitions, NearDedup(), tmp_path).ordinal("key", "n")
    out = to_arrow(corpus.frame.compute())
    assert out.schema == corpus.schema == table_of([]).schema.append(pa.field("n", pa.int64()))
    assert places(out) == {v: i for i, v in enumerate(sorted(values))}
    assert dict(zip(out["key"].to_pylist(), out["payload"].to_pylist(), strict=True)) == {
        v: i for i, v in enumerate(values)}
    # some pieces empty (a filter keeps only a few rows): the numbers are still 0..n-1
    few = dask_corpus(table_of(values), partitions, NearDedup(), tmp_path).map(every_997th, table_of([]).schema)
    few = few.ordinal("key", "n")
    kept = [v for i, v in enumerate(values) if i % 997 == 0]
    assert places(to_arrow(few.frame.compute())) == {v: i for i, v in enumerate(sorted(kept))}
    empty = dask_corpus(table_of([]), 1, NearDedup(), tmp_path).ordinal("key", "n")
    assert len(empty.frame.compute()) == 0


def test_near_dedup_on_dask_decides_as_in_one_process_and_as_the_definition(client: object, tmp_path: Path) -> None:
    from tests.stages.test_dedup import decisions_of, near_copies_corpus, near_keys, reference_near_dedup

    batches, _ = near_copies_corpus(5)
    config = DedupConfig()
    stage = NearDedup(config)
    keys = near_keys(stage, batches)
    expected, expected_counters = reference_near_dedup(keys, config)
    local = stage.reduce(LocalCorpus(keys))
    assert decisions_of(local.rows.table) == expected
    for partitions in (1, 4):
        # a few edges per components partition: its rounds shuffle for real
        reduced = stage.reduce(dask_corpus(keys, partitions, stage, tmp_path, edges_per_partition=100))
        rows = to_arrow(reduced.rows.frame.compute())
        assert rows.schema == reduced.schema
        assert decisions_of(rows) == expected
        assert {k: reduced.counters[k] for k in expected_counters} == expected_counters
