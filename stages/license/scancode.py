"""ScanCode's license index: loaded once per process, on the first license text that needs a scan."""

from __future__ import annotations

import threading
import time

#: ScanCode's unknown-license matching (license-like text no rule explains → ``unknown``).
DETECT_UNKNOWN_TEXT = True


class _Scanner:
    """ScanCode's license index (loaded once per process, on the first license blob not in the cache)."""

    def __init__(self) -> None:
        from licensedcode.cache import get_index

        self.index = get_index()

    def scan(self, text: str, timeout_s: float) -> tuple[list[str], bool]:
        """SPDX expressions of the detections in ``text`` and whether the deadline passed.

        ScanCode checks its ``deadline`` between matching steps (a Dask worker runs tasks in threads,
        where a signal-based alarm cannot be used): it may overrun, but always returns.
        """
        from licensedcode.detection import detect_licenses

        deadline = time.time() + timeout_s
        detections = detect_licenses(
            index=self.index, query_string=text, deadline=deadline, unknown_licenses=DETECT_UNKNOWN_TEXT
        )
        expressions = [d.license_expression_spdx for d in detections if d.license_expression is not None]
        return [e for e in expressions if e], time.time() > deadline


_SCANNER: list[_Scanner] = []
_SCANNER_LOCK = threading.Lock()


def scanner() -> _Scanner:
    """The process's ScanCode index (loaded on the first call)."""
    with _SCANNER_LOCK:
        if not _SCANNER:
            _SCANNER.append(_Scanner())
        return _SCANNER[0]


def scanner_loaded() -> bool:
    """Whether this process has loaded ScanCode's index already."""
    return bool(_SCANNER)
