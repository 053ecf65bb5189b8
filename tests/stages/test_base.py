import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

from stages.base import Reason, binary_array, binary_views, split


@given(st.lists(st.one_of(st.none(), st.binary(max_size=50)), max_size=40))
def test_binary_array_equals_pa_array(values: list[bytes | None]) -> None:
    built = binary_array(values)
    built.validate(full=True)
    assert built.equals(pa.array(values, pa.large_binary()))


@given(st.lists(st.text(max_size=20), max_size=20))
def test_binary_array_as_strings(values: list[str]) -> None:
    built = binary_array([v.encode() for v in values], pa.large_string())
    built.validate(full=True)
    assert built.to_pylist() == values


def test_split_counts_and_ledger_rows() -> None:
    table = pa.table({
        "blob_id": ["a", "b", "c"], "content_id": ["x", "y", "z"], "origin_url": ["o"] * 3,
        "snapshot_id": ["s"] * 3, "revision_id": ["r"] * 3, "path": ["/a", "/b", "/c"],
        "length": pa.array([1, 2, 3], pa.int64()),
    })
    kept, dropped, counters = split("decode", table, [None, Reason.BINARY, Reason.BINARY], [None, "d1", "d2"])
    assert kept["blob_id"].to_pylist() == ["a"]
    assert dropped["reason"].to_pylist() == ["binary", "binary"]
    assert dropped["length_bytes"].to_pylist() == [2, 3]
    assert counters == {"in": 3, "kept": 1, "binary": 2}


def test_binary_views_of_a_sliced_chunked_column() -> None:
    values = [b"a", b"", b"bcd", b"ef"]
    column = pa.chunked_array([pa.array(values[:2], pa.large_binary()), pa.array(values[2:], pa.large_binary())])
    assert [bytes(v) for v in binary_views(column)] == values
    assert [bytes(v) for v in binary_views(pa.array(values, pa.large_binary()).slice(1, 2))] == [b"", b"bcd"]
