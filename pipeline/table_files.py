"""User-supplied table files (Parquet, CSV, JSON Lines) read into Arrow, with one-line errors."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

#: Each format by its file suffixes.
FORMATS = {"parquet": (".parquet", ".pq"), "csv": (".csv",), "jsonl": (".jsonl", ".json", ".ndjson")}


def read_table_file(path: Path, formats: tuple[str, ...], what: str) -> pa.Table:
    """The table in ``path``, whose suffix must be one of ``formats`` (keys of ``FORMATS``); a
    PipelineError naming the file and ``what`` it should be on anything a user must fix."""
    from pipeline.errors import PipelineError

    kind = next((k for k in formats if path.suffix in FORMATS[k]), None)
    if kind is None:
        names = [f".{k}" for k in formats]
        raise PipelineError(f"{path}: {what} must be {', '.join(names[:-1])} or {names[-1]}")
    try:
        if kind == "parquet":
            import pyarrow.parquet as pq

            return pq.read_table(path)
        if kind == "csv":
            import pyarrow.csv as csv

            return csv.read_csv(path)
        import pyarrow.json as pj

        return pj.read_json(path)
    except (OSError, pa.ArrowException) as e:
        raise PipelineError(f"{path}: cannot read the {what} ({e})") from e
