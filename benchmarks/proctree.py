"""Run a command and measure its whole process tree: CPU seconds (user + system, every descendant
included: they are waited for) and peak memory summed over all processes alive at once (PSS, so
pages shared between a parent and its forked workers are counted once, split between them).

    python -m benchmarks.proctree -- python -m pipeline run --version 1 --output /tmp/x

Memory is sampled every ``--interval`` seconds from ``/proc/<pid>/smaps_rollup`` (Linux); a peak
shorter than the interval can be missed, so the figure is a lower bound within one interval.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class TreeRun:
    rc: int
    cpu_s: float
    wall_s: float
    peak_pss_mb: float
    peak_processes: int
    #: peak summed PSS (MB) per phase, when ``measure`` was given ``marks``: a phase starts at the
    #: first line of the command's standard error that starts with its mark (the first phase: "start")
    phase_peaks_mb: dict[str, float] = field(default_factory=dict)


def _children(pid: int) -> list[int]:
    found, stack = [], [pid]
    while stack:
        current = stack.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                stack += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
    return found


def _pss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def measure(command: list[str], interval: float = 0.05, env: dict[str, str] | None = None,
            quiet: bool = True, marks: tuple[str, ...] = ()) -> TreeRun:
    """Run ``command`` to its end; its tree's CPU seconds, wall seconds and peak summed PSS (and, with
    ``marks``, the peak of each phase those lines of its standard error start: ``TreeRun.phase_peaks_mb``)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    out = subprocess.DEVNULL if quiet else None
    err = subprocess.PIPE if marks else out
    process = subprocess.Popen(command, stdout=out, stderr=err, env=env, text=bool(marks))
    phase = ["start"]
    if marks:
        def follow() -> None:  # the phase is the last mark seen; lines are echoed unless quiet
            for line in process.stderr:  # type: ignore[union-attr]
                for mark in marks:
                    if line.startswith(mark) and mark not in phase:
                        phase.append(mark)
                if not quiet:
                    sys.stderr.write(line)
        threading.Thread(target=follow, daemon=True).start()
    peak, peak_n, peaks = 0, 0, {}
    while process.poll() is None:
        pids = _children(process.pid)
        total = sum(_pss_kb(p) for p in pids)
        if total > peak:
            peak, peak_n = total, len(pids)
        peaks[phase[-1]] = max(peaks.get(phase[-1], 0), total)
        time.sleep(interval)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return TreeRun(process.returncode, round(cpu, 2), round(wall, 2), round(peak / 1024, 1), peak_n,
                   {k: round(v / 1024, 1) for k, v in peaks.items()})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--interval", type=float, default=0.05)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command")
    print(json.dumps(asdict(measure(command, args.interval, quiet=False))), file=sys.stderr)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
