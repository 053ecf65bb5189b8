"""``stages.base.Corpus`` in one process, over one Arrow table: for unit tests of a corpus stage and
for trying one out on a few rows. The Dask implementation (``pipeline.graph.corpus``) is the one
builds use; both give the same reduced rows (``label_iterations`` aside: union-find takes one round).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from stages.base import PieceFn

ContentOf = Callable[[int, int], str]


class LocalCorpus:
    """A whole table in memory; ``resource`` is passed to every function as a worker would;
    ``content_of(bucket, row)`` answers ``with_content``."""

    def __init__(self, table: pa.Table, resource: Any = None, content_of: ContentOf | None = None) -> None:
        self.table = table
        self.resource = resource
        self.content_of = content_of

    def _new(self, table: pa.Table) -> LocalCorpus:
        return LocalCorpus(table, self.resource, self.content_of)

    def map(self, fn: PieceFn, schema: pa.Schema) -> LocalCorpus:
        return self._new(fn(self.table, self.resource).cast(schema))

    def group(self, key: str, fn: PieceFn, schema: pa.Schema) -> LocalCorpus:
        return self._new(self.table.sort_by([(key, "ascending")])).map(fn, schema)

    def join(self, other: LocalCorpus, on: str | Sequence[str], how: str = "inner") -> LocalCorpus:
        keys = [on] if isinstance(on, str) else list(on)
        joined = self.table.join(other.table, keys=keys, join_type={"inner": "inner", "left": "left outer"}[how])
        names = [*self.table.column_names, *(c for c in other.table.column_names if c not in keys)]
        return self._new(joined.select(names))

    def concat(self, other: LocalCorpus) -> LocalCorpus:
        return self._new(pa.concat_tables([self.table, other.table]))

    def components(self, a: str, b: str) -> tuple[LocalCorpus, int]:
        parent: dict[str, str] = {}

        def find(x: str) -> str:
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        for x, y in zip(self.table[a].to_pylist(), self.table[b].to_pylist(), strict=True):
            parent.setdefault(x, x)
            parent.setdefault(y, y)
            rx, ry = find(x), find(y)
            if rx != ry:
                parent[max(rx, ry)] = min(rx, ry)  # the smallest node is the root: it labels the component
        nodes = sorted(parent)
        node_type = self.table.schema.field(a).type
        labels = pa.table({"node": pa.array(nodes, node_type), "label": pa.array([find(n) for n in nodes], node_type)})
        return self._new(labels), 1

    def ordinal(self, key: str, into: str) -> LocalCorpus:
        order = pc.sort_indices(self.table, sort_keys=[(key, "ascending")])
        table = self.table.take(order)  # in key order, as the Dask version leaves the rows
        return self._new(table.append_column(into, pa.array(np.arange(table.num_rows, dtype=np.int64))))

    def with_content(self, bucket: str, row: str, into: str) -> LocalCorpus:
        if self.content_of is None:
            raise ValueError("with_content needs content_of")
        values = [self.content_of(b, r) for b, r in zip(self.table[bucket].to_pylist(), self.table[row].to_pylist(),
                                                         strict=True)]
        return self._new(self.table.append_column(into, pa.array(values, pa.large_string())))

    def persist(self) -> LocalCorpus:
        return self

    def count(self) -> int:
        return self.table.num_rows

    def totals(self, columns: Sequence[str]) -> dict[str, int]:
        return {c: int(pc.sum(self.table[c]).as_py() or 0) for c in columns}
