"""ScanCode's license index and its matching (``License.setup()`` holds one, loaded on first use)."""

from __future__ import annotations

import gc
import time

from stages.license import candidates
from stages.license.policy import PARSER_LOCK

#: ScanCode's unknown-license matching (license-like text no rule explains → ``unknown``).
DETECT_UNKNOWN_TEXT = True


class Scanner:
    """ScanCode's license index, loaded when built (~2 s, ~1 GiB); ``release_index`` drops it. Its
    candidate step runs through ``stages.license.candidates`` (2.8x faster, the same answers)."""

    def __init__(self) -> None:
        from licensedcode.cache import get_index

        # Unpickling the index creates ~20 million objects; the cyclic collector would walk all
        # those already made again and again while it runs (benchmarks/license_candidates.py
        # measures the load each way).
        # Paused for the load only, and only if it was running (it is process-wide: other threads
        # merely get their cycles collected ~2 s later).
        collecting = gc.isenabled()
        gc.disable()
        try:
            self.index = get_index()
        finally:
            if collecting:
                gc.enable()
        candidates.install(self.index)  # ScanCode's candidate step, its hopeless rules left out (same answers)

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
