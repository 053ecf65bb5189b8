"""ScanCode's license index and its matching (``License.setup()`` holds one, loaded on first use)."""

from __future__ import annotations

import gc
import time

from stages.license import candidates, lean
from stages.license.policy import PARSER_LOCK

#: ScanCode's unknown-license matching (license-like text no rule explains → ``unknown``).
DETECT_UNKNOWN_TEXT = True


class Scanner:
    """ScanCode's license index, loaded when built; ``release_index`` drops it. Loaded from the lean
    copy of ScanCode's cache (``stages.license.lean``: less memory, the same answers) when there
    is one, else from ScanCode's cache, which then writes the lean copy for the next load. Its
    candidate step runs through ``stages.license.candidates`` (faster, the same answers; both measured
    in docs/performance.md)."""

    def __init__(self) -> None:
        import licensedcode.cache as scancode_cache

        # Unpickling the index creates millions of objects; the cyclic collector would walk all
        # those already made again and again while it runs (benchmarks/license_candidates.py
        # measures the load each way).
        # Paused for the load only, and only if it was running (it is process-wide: other threads
        # merely get their cycles collected a little later).
        collecting = gc.isenabled()
        gc.disable()
        arrays, full = None, False
        try:
            with PARSER_LOCK:  # no scan runs while the process's one cache is set
                cache = scancode_cache._LICENSE_CACHE
                if cache is None and (found := lean.load()) is not None:
                    cache, arrays = found
                    scancode_cache._LICENSE_CACHE = cache  # where ScanCode's functions look for it
                elif cache is None:
                    cache, full = scancode_cache.get_cache(), True
        finally:
            if collecting:
                gc.enable()
        self.index = cache.index
        # ScanCode's candidate step, its hopeless rules left out (same answers)
        rule_sets = candidates.install(self.index, arrays)
        if full:
            with PARSER_LOCK:
                lean.save(cache, rule_sets.arrays())

    def scan(self, text: str, timeout_s: float) -> tuple[list[str], bool]:
        """SPDX expressions of the detections in ``text`` and whether the deadline passed.

        ScanCode checks its ``deadline`` between matching steps (a Dask worker runs tasks in threads,
        where a signal-based alarm cannot be used): it may overrun, but always returns.
        """
        from licensedcode.detection import detect_licenses

        with PARSER_LOCK:  # the deadline counts from when this scan may run
            deadline = time.time() + timeout_s
            detections = detect_licenses(
                index=self.index, query_string=text, deadline=deadline, unknown_licenses=DETECT_UNKNOWN_TEXT
            )
            expressions = [d.license_expression_spdx for d in detections if d.license_expression is not None]
            return [e for e in expressions if e], time.time() > deadline


def release_index() -> None:
    """Drop ScanCode's license index from this process (a later ``Scanner()`` loads it again).

    ScanCode keeps its one index in a module global (``licensedcode.cache._LICENSE_CACHE``, which its
    detection functions read); a ``Scanner`` only points at it, so dropping the Scanner alone frees
    nothing. Only called between phases, while no task runs; the lock also waits for a scan.
    """
    import sys

    cache = sys.modules.get("licensedcode.cache")
    if cache is None:
        return
    with PARSER_LOCK:
        cache._LICENSE_CACHE = None  # type: ignore[attr-defined]
        candidates.forget()
