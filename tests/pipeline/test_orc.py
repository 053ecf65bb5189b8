import datetime as dt
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.orc as orc
import pytest

from pipeline.errors import PipelineError
from pipeline.orc import Export, Piece

TS = pa.timestamp("us", tz="UTC")


def test_the_sample_export_passes_the_check_and_reads_all_tables(sample_export: Path) -> None:
    export = Export(str(sample_export))
    export.check()
    total = sum(export.read(p).num_rows for p in export.pieces("directory_entry"))
    assert total == 447
    status = export.read(export.pieces("origin_visit_status")[0])
    assert status.schema.field("date").type == TS
    assert status.schema.names == ["origin", "visit", "date", "status", "snapshot"]
    assert export.schema("revision").names == ["id", "directory", "date", "committer_date"]


def test_not_an_export(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match=r"not a Software Heritage export \(no orc/ folder\)"):
        Export(str(tmp_path)).check()


def test_missing_table_is_named(sample_export: Path) -> None:
    shutil.rmtree(sample_export / "orc" / "revision")
    with pytest.raises(PipelineError, match=r"orc/revision: table missing from the export"):
        Export(str(sample_export)).check()


def test_an_empty_table_folder_is_an_empty_table(sample_export: Path) -> None:
    for f in (sample_export / "orc" / "revision").iterdir():
        f.unlink()
    export = Export(str(sample_export))
    export.check()
    assert export.pieces("revision") == []
    assert export.schema("revision").names == ["id", "directory", "date", "committer_date"]
    assert export.schema("revision").field("date").type == TS


def test_optional_tables_may_be_absent(sample_export: Path) -> None:
    for table in ("release", "skipped_content", "origin_visit", "directory"):
        shutil.rmtree(sample_export / "orc" / table)
    export = Export(str(sample_export))
    export.check()
    assert export.files("release") == [] and export.schema("skipped_content").names[0] == "sha1"


def test_unparseable_orc_file_is_named(sample_export: Path) -> None:
    bad = next((sample_export / "orc" / "release").iterdir())
    bad.write_bytes(b"this is not ORC")
    with pytest.raises(PipelineError, match=rf"{bad.name}: not a readable ORC file"):
        Export(str(sample_export)).check()


def test_table_lacking_a_column_is_named(sample_export: Path) -> None:
    target = next((sample_export / "orc" / "content").iterdir())
    orc.write_table(pa.table({"sha1": ["a"], "sha1_git": ["b"]}), target)
    with pytest.raises(PipelineError, match=r"table content lacks column\(s\) length, status"):
        Export(str(sample_export)).check()


def test_tables_split_over_many_files_and_stripes(sample_export: Path) -> None:
    folder = sample_export / "orc" / "directory_entry"
    (original,) = folder.iterdir()
    table = orc.read_table(original)
    original.unlink()
    for i, start in enumerate(range(0, table.num_rows, 100)):
        orc.write_table(table.slice(start, 100), folder / f"directory_entry-{i}.orc", stripe_size=4096)
    export = Export(str(sample_export))
    pieces = export.pieces("directory_entry")
    assert len({p.path for p in pieces}) == 5
    got = pa.concat_tables(export.read(p) for p in pieces)
    assert sorted(got["target"].to_pylist()) == sorted(table["target"].to_pylist())


def test_out_of_range_timestamps_are_read_per_row(tmp_path: Path) -> None:
    """Commit dates in year 9999 make pyarrow's nanosecond reader raise; the fallback keeps them."""
    (tmp_path / "orc" / "revision").mkdir(parents=True)
    dates = [dt.datetime(2020, 1, 1), dt.datetime(9999, 12, 31), dt.datetime(1, 1, 2)]
    orc.write_table(
        pa.table({
            "id": ["a", "b", "c"],
            "date": pa.array(dates, pa.timestamp("us")),
            "committer_date": pa.array(dates[:1] * 3, pa.timestamp("us")),
            "directory": ["d1", "d2", "d3"],
        }),
        tmp_path / "orc" / "revision" / "revision-x.orc",
    )
    export = Export(str(tmp_path))
    with pytest.raises(pa.ArrowInvalid):
        orc.ORCFile(tmp_path / "orc" / "revision" / "revision-x.orc").read()
    table = export.read(Piece("revision", str(tmp_path / "orc" / "revision" / "revision-x.orc"), 0))
    assert table.schema.field("date").type == TS
    assert table["date"].to_pylist() == [d.replace(tzinfo=dt.UTC) for d in dates]
    assert table["directory"].to_pylist() == ["d1", "d2", "d3"]


def test_fingerprint_changes_with_any_table_file(sample_export: Path) -> None:
    before = Export(str(sample_export)).fingerprint()
    assert before == Export(str(sample_export)).fingerprint()
    assert before["files"] == 10  # the tables the walk reads, directory included
    target = next((sample_export / "orc" / "origin").iterdir())
    table = orc.read_table(target)
    orc.write_table(table.slice(0, 1), target)
    assert Export(str(sample_export)).fingerprint()["sha256"] != before["sha256"]
