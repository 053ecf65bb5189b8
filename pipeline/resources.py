"""Per-process stage resources: what ``stage.setup()`` returns, loaded once per process for each
distinct stage value.

Stages are frozen dataclasses whose fields are their config, so the stage value itself is the key:
two stages with the same config share one resource, a stage with another config gets its own. The
resources are read-only (or memoise pure functions), so every thread of a worker may use them at
once; loading is serialised per key so that two threads never load the same index twice.
"""

from __future__ import annotations

import ctypes
import gc
import threading
from typing import Any

import pyarrow as pa

from stages.base import Stage

_MAX_ENTRIES = 32  # distinct stage configurations kept per process (a long-lived worker serves many runs)
_LOCK = threading.Lock()
_RESOURCES: dict[Stage, Any] = {}
_LOADING: dict[Stage, threading.Lock] = {}


def resource(stage: Stage) -> Any:
    """``stage.setup()``'s result, loaded on the first call in this process for this stage value."""
    with _LOCK:
        if stage in _RESOURCES:
            return _RESOURCES[stage]
        loading = _LOADING.setdefault(stage, threading.Lock())
    with loading:
        with _LOCK:
            if stage in _RESOURCES:
                return _RESOURCES[stage]
        value = stage.setup()
        with _LOCK:
            while len(_RESOURCES) >= _MAX_ENTRIES:
                oldest = next(iter(_RESOURCES))
                del _RESOURCES[oldest]
                _LOADING.pop(oldest, None)
            _RESOURCES[stage] = value
        return value


def loaded() -> int:
    """How many resources this process holds (for tests)."""
    with _LOCK:
        return len(_RESOURCES)


def after_reduce(stage: Stage) -> bool:
    """Let ``stage`` drop what only its reduce needed from this process's resource (``CorpusStage.
    after_reduce``), then hand the freed memory back to the system; whether this process held one.
    Run on every worker between phases, while no task runs."""
    with _LOCK:
        if stage not in _RESOURCES:
            return False
        value = _RESOURCES[stage]
    if stage.after_reduce(value):  # type: ignore[union-attr]
        gc.collect()  # only when something was dropped: a collection of a loaded process is not free
        _trim_heap()
    return True


def _trim_heap() -> None:
    """glibc keeps freed small blocks for reuse; ``malloc_trim`` gives the free pages back (ScanCode's
    index is millions of small objects: docs/performance.md, "ScanCode's candidate step and index",
    gives what a process keeps after ``release_index`` and this)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (macOS, musl): nothing to trim, the allocator decides
        return
    libc.malloc_trim(0)


def give_back_memory() -> None:
    """Return Arrow's freed buffers to the OS after a partition: Dask counts retained allocator
    memory against the worker's limit and pauses the worker when it looks full."""
    pool = pa.default_memory_pool()
    pool.release_unused()
    if pool.backend_name == "jemalloc":
        pa.jemalloc_set_decay_ms(0)
