"""``stages.base.Corpus`` on Dask: the operations a corpus stage's reduce is written against.

Every function a stage hands over runs on the workers as ``fn(table, resource)``, the resource being
the stage's per-process ``setup()`` result (``pipeline.resources``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pyarrow as pa

from pipeline.graph.cluster import to_arrow, to_pandas
from pipeline.partition import attach_content
from pipeline.resources import resource
from stages.base import PieceFn, Stage

_MAX_ROUNDS = 200


@dataclass(frozen=True)
class CorpusContext:
    """What the Dask corpus needs besides its rows: where the kept rows of each partition lie (for
    ``with_content``), a log, and how many edges a connected-components partition holds."""

    rows_dir: str
    log: Callable[[str], None]
    edges_per_partition: int = 1_000_000
    tick: Callable[[], None] = lambda: None  # one step of the reduce done (its progress bar)


def _piece(df: pd.DataFrame, fn: PieceFn, stage: Stage, schema: pa.Schema) -> pd.DataFrame:
    out = fn(to_arrow(df), resource(stage))
    return to_pandas(out if out.schema.equals(schema) else out.cast(schema))


def wait(frame: dd.DataFrame) -> dd.DataFrame:
    """``frame``, its persisted pieces computed (so a step of the progress bar is a step done)."""
    from dask.distributed import wait as wait_for

    wait_for(frame)
    return frame


def meta(schema: pa.Schema) -> pd.DataFrame:
    """The empty frame Dask needs to know a table's columns."""
    return to_pandas(schema.empty_table())


class DaskCorpus:
    """A Dask DataFrame of one corpus stage's rows, with the ``Corpus`` operations."""

    def __init__(self, frame: dd.DataFrame, schema: pa.Schema, stage: Stage, context: CorpusContext) -> None:
        self.frame = frame
        self.schema = schema
        self.stage = stage
        self.context = context

    def _new(self, frame: dd.DataFrame, schema: pa.Schema) -> DaskCorpus:
        return DaskCorpus(frame, schema, self.stage, self.context)

    def map(self, fn: PieceFn, schema: pa.Schema) -> DaskCorpus:
        return self._new(self.frame.map_partitions(_piece, fn, self.stage, schema, meta=meta(schema)), schema)

    def group(self, key: str, fn: PieceFn, schema: pa.Schema) -> DaskCorpus:
        return self._new(self.frame.shuffle(key), self.schema).map(fn, schema)

    def join(self, other: DaskCorpus, on: str | Sequence[str], how: str = "inner") -> DaskCorpus:
        keys = [on] if isinstance(on, str) else list(on)
        schema = pa.schema([*self.schema, *(f for f in other.schema if f.name not in keys)])
        return self._new(self.frame.merge(other.frame, on=keys, how=how), schema)

    def concat(self, other: DaskCorpus) -> DaskCorpus:
        return self._new(dd.concat([self.frame, other.frame]), self.schema)

    def components(self, a: str, b: str) -> tuple[DaskCorpus, int]:
        # as many partitions as the edges need, not as the input had: each join of a round is a
        # shuffle, and a shuffle of a few thousand edges over many partitions is all overhead
        n_edges = self.count()
        parts = max(1, math.ceil(n_edges / self.context.edges_per_partition))
        edges = self.frame[[a, b]].repartition(npartitions=parts)
        labels, rounds = _components(edges.persist(), a, b, self.context.log, self.context.tick)
        node = self.schema.field(a).type
        schema = pa.schema([pa.field("node", node), pa.field("label", node)])
        return self._new(labels, schema), rounds

    def ordinal(self, key: str, into: str) -> DaskCorpus:
        # Dask's sort: a pass for the quantiles of ``key`` (the pieces' bounds), a shuffle into pieces
        # in key order, each sorted; then each piece's sizes give its first number
        ordered = self._new(self.frame.sort_values(key), self.schema).persist()
        sizes = ordered.frame.map_partitions(len).compute().tolist()
        starts = tuple(int(s) for s in np.cumsum([0, *sizes[:-1]]))
        schema = self.schema.append(pa.field(into, pa.int64()))
        frame = ordered.frame.map_partitions(_numbered, starts, into, schema, partition_info=True, meta=meta(schema))
        return self._new(frame, schema)

    def with_content(self, bucket: str, row: str, into: str) -> DaskCorpus:
        schema = self.schema.append(pa.field(into, pa.large_string()))
        fn = partial(attach_content, rows_dir=self.context.rows_dir, bucket=bucket, row=row, into=into)
        return self.map(fn, schema)

    def persist(self) -> DaskCorpus:
        persisted = self._new(wait(self.frame.persist()), self.schema)
        self.context.tick()
        return persisted

    def count(self) -> int:
        n = int(self.frame.shape[0].compute())
        self.context.tick()
        return n

    def totals(self, columns: Sequence[str]) -> dict[str, int]:
        if not columns:
            return {}
        sums = dask.compute(*(self.frame[c].sum() for c in columns))
        return {c: int(0 if pd.isna(v) else v) for c, v in zip(columns, sums, strict=True)}


def _numbered(df: pd.DataFrame, starts: tuple[int, ...], into: str, schema: pa.Schema,
              partition_info: dict[str, Any] | None = None) -> pd.DataFrame:
    """Piece ``partition_info["number"]`` of a sorted frame plus ``into``: its rows' places in the whole
    order (the piece's first is ``starts[number]``)."""
    assert partition_info is not None  # Dask gives it (``partition_info=True``)
    first = starts[partition_info["number"]]
    table = to_arrow(df)
    table = table.append_column(into, pa.array(np.arange(first, first + len(df), dtype=np.int64)))
    return to_pandas(table.cast(schema))


def _components(edges: dd.DataFrame, a: str, b: str, log: Callable[[str], None],
                tick: Callable[[], None] = lambda: None) -> tuple[dd.DataFrame, int]:
    """Connected components of ``edges`` (a, b): every node labelled with the smallest node of its
    component, by min-label propagation with pointer jumping, all as shuffles and joins."""
    string = edges._meta[a].dtype
    label_meta = pd.DataFrame({"node": pd.Series(dtype=string), "label": pd.Series(dtype=string)})
    both = dd.concat([edges.rename(columns={a: "src", b: "dst"}), edges.rename(columns={a: "dst", b: "src"})])
    # a fixed number of label partitions: split_out=True would follow the concat below and grow every round
    parts = max(1, edges.npartitions)
    labels = both[["src"]].rename(columns={"src": "node"}).drop_duplicates(split_out=parts)
    labels = labels.assign(label=labels.node).persist()
    for iteration in range(1, _MAX_ROUNDS):
        neighbour = both.merge(labels.rename(columns={"node": "dst", "label": "nlabel"}), on="dst")
        offered = neighbour[["src", "nlabel"]].rename(columns={"src": "node", "nlabel": "label"})
        candidates = dd.concat([labels, offered])
        new = candidates.groupby("node").label.min(split_out=parts).reset_index()
        jumped = new.merge(new.rename(columns={"node": "label", "label": "label2"}), on="label", how="left")
        jumped = jumped.assign(label=jumped.label.where(jumped.label2.isna() | (jumped.label <= jumped.label2),
                                                        jumped.label2))[["node", "label"]]
        jumped = jumped.map_partitions(lambda df: df, meta=label_meta).persist()
        compared = jumped.merge(labels.rename(columns={"label": "old"}), on="node")
        changed = int((compared.label != compared.old).sum().compute())
        tick()
        labels = jumped
        if changed == 0:
            return labels, iteration
        log(f"components: round {iteration}, {changed} labels changed")
    raise RuntimeError(f"connected components did not converge in {_MAX_ROUNDS} rounds")
