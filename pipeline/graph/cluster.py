"""The Dask client, Arrow ⇄ pandas at the task boundary, progress bars, and the step between reduces."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import dask
import pandas as pd
import pyarrow as pa
from dask.distributed import Client, LocalCluster, as_completed
from tqdm import tqdm


@contextmanager
def dask_client(workers: int | None, scheduler: str | None, memory_limit: str | int = "auto",
                threads: int = 1, in_process: bool = False) -> Iterator[Client]:
    """A client on ``scheduler`` (tcp://host:port) or on a new LocalCluster of ``workers`` processes
    with ``threads`` threads each; ``in_process``: one worker inside this process (threads only), for
    small inputs, where starting worker processes costs more than the work."""
    dask.config.set({"dataframe.convert-string": False, "distributed.worker.daemon": False})
    # p2p shuffles log every start and stop at WARNING; they are routine here
    logging.getLogger("distributed.shuffle").setLevel(logging.ERROR)
    if scheduler:
        with Client(scheduler) as client:
            yield client
        return
    with (
        LocalCluster(
            # a free port, not 8787: a second run on the machine would warn that 8787 is taken
            n_workers=1 if in_process else workers, threads_per_worker=threads, processes=not in_process,
            dashboard_address="127.0.0.1:0", memory_limit=None if in_process else memory_limit,
            # a task's error reaches the driver, which says it in one line; the worker's own report of
            # it (a traceback on stderr) would only repeat it
            silence_logs=logging.CRITICAL,
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def to_pandas(table: pa.Table) -> pd.DataFrame:
    """Arrow-backed pandas, so strings, bytes and timestamps keep their Arrow types."""
    return table.to_pandas(types_mapper=pd.ArrowDtype)


def to_arrow(df: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(df, preserve_index=False)


def arrow_fn(fn: Callable[..., pa.Table], *args: Any) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """``fn`` over Arrow tables, as a function over the pandas frames Dask hands around."""

    def run(df: pd.DataFrame) -> pd.DataFrame:
        return to_pandas(fn(to_arrow(df), *args))

    return run


def after_reduce(client: Client, stage: Any) -> int:
    """``stage.after_reduce`` on every worker that holds its resource (ScanCode's index leaves every
    worker once the License reduce is done); how many did. Called between phases, no task running."""
    from pipeline.resources import after_reduce as release

    return sum(bool(done) for done in client.run(release, stage).values())


@contextmanager
def phase_bar(desc: str) -> Iterator[Any]:
    """A progress bar (on a terminal only) for a phase whose length is not known ahead: it counts the
    steps done (walk levels, a reduce's shuffles and joins, component rounds)."""
    with tqdm(desc=desc, unit="step", disable=None, file=sys.stderr) as bar:
        yield bar


def run_with_bar(client: Client, tasks: list[Any], desc: str) -> list[Any]:
    """Compute ``tasks`` on the cluster with a progress bar (on a terminal); results in completion order."""
    futures = client.compute(tasks)
    results = []
    with tqdm(total=len(futures), desc=desc, unit="part", disable=None, file=sys.stderr) as bar:
        for future in as_completed(futures):
            results.append(future.result())
            bar.update(1)
    return results
