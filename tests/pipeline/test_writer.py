from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import given
from hypothesis import strategies as st

from pipeline.config import OutputConfig
from pipeline.writer import ShardWriter, language_slug, size_bounds


@given(st.lists(st.integers(min_value=0, max_value=100), max_size=50), st.integers(min_value=1, max_value=150))
def test_size_bounds_cover_everything_within_the_limit(sizes: list[int], limit: int) -> None:
    bounds = size_bounds(sizes, limit)
    assert [i for a, b in bounds for i in range(a, b)] == list(range(len(sizes)))
    for a, b in bounds:
        assert b > a
        assert sum(sizes[a:b]) <= limit or b - a == 1


def test_language_slugs_are_safe_folder_names() -> None:
    assert language_slug("C++") == "c++"
    assert language_slug("F#") == "f-sharp"
    assert language_slug("Objective-C++") == "objective-c++"
    assert language_slug("Graphviz (DOT)") == "graphviz-dot"
    assert language_slug("Text/Plain") == "text-plain"
    assert language_slug("../..") == "unknown"
    assert len({language_slug(x) for x in ("C", "C#", "C++")}) == 3


def test_shard_writer_is_atomic_and_deterministic(tmp_path: Path) -> None:
    content = pa.array(["x" * 10, "y" * 10, "z" * 10], pa.large_string())
    table = pa.table({"path": ["/a", "/b", "/c"], "content": content})
    config = OutputConfig(row_group_bytes=15)
    entries = []
    for name in ("one", "two"):
        writer = ShardWriter(tmp_path / name, "data/unknown/part-00000.parquet", table.schema, config)
        writer.write(table.slice(0, 2))
        assert not (tmp_path / name / "data/unknown/part-00000.parquet").exists()  # not visible until closed
        writer.write(table.slice(2))
        entries.append(writer.close())
    assert entries[0] == entries[1] and entries[0]["rows"] == 3
    shard = tmp_path / "one" / "data/unknown/part-00000.parquet"
    assert pq.ParquetFile(shard).metadata.num_row_groups == 3
    assert pq.read_table(shard).equals(table)
    assert not list((tmp_path / "one" / "data/unknown").glob(".*tmp*"))
