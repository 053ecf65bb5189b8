"""Stages: pure functions over pyarrow tables. No module here imports dask."""
