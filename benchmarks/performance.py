"""Regenerate docs/performance.md: run every speed and memory benchmark at the current commit.

    python -m benchmarks.performance                 # every section (about an hour on 2 cores)
    python -m benchmarks.performance --only endtoend redaction
    python -m benchmarks.performance --list

Each section of docs/performance.md lies between ``<!-- bench:NAME -->`` markers and is the output
of one command, headed by the commit it ran at (with ``+dirty`` if the tree had uncommitted
changes), the date and the machine. ``--only`` reruns some sections and leaves the others as
they are, with their own commits. Figures are only ever written by this script: prose around
them in the page carries no figure. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "performance.md"
WORK = Path("/tmp/bench-perf")


@dataclass(frozen=True)
class Section:
    name: str
    title: str
    about: str
    command: tuple[str, ...]


SECTIONS = (
    Section(
        "endtoend", "The whole pipeline, start-up included (issue 13's goals)",
        "Exports of real code of growing size, each built by `python -m pipeline run --workers 1` pinned to "
        "one core (the bundled sample: the README's command as it is), default config, fresh output folder; "
        "CPU seconds and peak memory (PSS) summed over every process of the run. Goals: the bundled sample "
        "in at most 5 CPU s and 600 MB; 36 MB at 5 MB/s per core or more and at most 1 GB; 300 MB and more "
        "at 12 MB/s per core, memory flat as the export grows. The share of each stage shows where the next "
        "bottleneck is. These runs take the engine without Dask (`pipeline.local_build`); the rows \"on "
        "Dask\" build the same export on one Dask worker in the process (`[execution] local_engine_below_mb "
        "= 0`), the engine such runs took before, and the last line compares their shards. The walk without "
        "Dask is also measured alone, for its memory.",
        ("-m", "benchmarks.endtoend", "--mb", "36", "100", "300", "1000", "--work", f"{WORK}/e2e"),
    ),
    Section(
        "foundation", "Walk + fetch + decode + write",
        "The foundation alone (redaction off, the other stages on): one repository per project-sized "
        "folder of real code on the machine, exported with `export-git`; one worker pinned to one core, "
        "then two workers.",
        ("benchmarks/foundation.py", "--min-mb", "300", "--work", f"{WORK}/foundation"),
    ),
    Section(
        "redaction", "Redaction",
        "The redaction stage over a seeded 40 MB sample of real files, one process, one core; "
        "detect-secrets line by line on part of the same files for comparison. Quality figures of the "
        "same run are in docs/quality.md.",
        ("benchmarks/redaction.py", "--mb", "40", "--per-kind", "200", "--seed", "7"),
    ),
    Section(
        "decontamination", "Decontamination",
        "The decontamination stage (HumanEval's snippets) over a seeded 60 MB sample of real files, one "
        "process, one core; the automaton alone over every normalised file (the stage before its prefilter) "
        "for comparison, and a check that both give the same details on files with HumanEval's items planted.",
        ("-m", "benchmarks.decontamination", "--mb", "60", "--seed", "7"),
    ),
    Section(
        "language", "Language and filters",
        "The language and filters stages over a seeded sample of real files from six ecosystems, one core.",
        ("-m", "benchmarks.language_speed", "--mb", "60", "--partition-mb", "32", "--seed", "7", "--repeat", "2"),
    ),
    Section(
        "guesslang", "guesslang's model: numpy against TensorFlow",
        "Load and scoring cost of the numpy run of guesslang's model and of TensorFlow running the same "
        "SavedModel, each in a fresh process, on the same real files; and how far their probabilities are.",
        ("-m", "benchmarks.guesslang_port"),
    ),
    Section(
        "license", "License stage",
        "The license stage against decode on real package trees (installed Python distributions, npm "
        "packages), one core: ScanCode once per distinct license blob on an empty cache, never on a warm one.",
        ("benchmarks/license_speed.py", "--mb", "150", "--cache", f"{WORK}/license-cache"),
    ),
    Section(
        "license_exact", "Exact license recognition before ScanCode",
        "Distinct real license files on the machine: how many the exact recogniser answers, and whether "
        "its answers are ScanCode's on the same files (ScanCode is run on each to check).",
        ("-m", "benchmarks.license_exact"),
    ),
    Section(
        "license_candidates", "ScanCode's candidate step and index, as shipped and as the stage runs them",
        "ScanCode's index loaded each way in a fresh process (as shipped; the stage's lean copy, and its "
        "first load on a machine, which writes the copy). Then real license files that the exact recogniser "
        "does not answer (so a build gives them to ScanCode), each detected by ScanCode as shipped (full index, "
        "its candidate step) and as the stage runs it (lean index, stages/license/candidates.py's step): "
        "CPU seconds each way, and whether the detections are identical (ScanCode's own are the truth).",
        ("-m", "benchmarks.license_candidates", "--limit", "150", "--seed", "3"),
    ),
    Section(
        "dedup", "Dedup at scale",
        "MinHash signatures and SHA-256 per core, then the foundation export taken several times under "
        "other origin URLs (forks), built on two workers with a memory limit each.",
        ("-m", "benchmarks.dedup_scale", "--copies", "2", "--memory-limit", "2GiB", "--work", f"{WORK}/foundation"),
    ),
    Section(
        "lookup", "lookup on a million files",
        "`python -m pipeline lookup` on a generated version of 1,000,000 kept files and 300,000 ledger rows: "
        "in-process and as a fresh process. Ground truth from the generator.",
        ("-m", "benchmarks.lookup", "--rows", "1000000", "--dropped", "300000", "--repeat", "3",
         "--work", f"{WORK}/lookup"),
    ),
)

_HEADER = """# Performance

Every figure on this page is written by `python -m benchmarks.performance` (one command; `--only
NAME` reruns one section), which runs the benchmark scripts under `benchmarks/` and puts their
output here, each section headed by the commit and machine that measured it. Benchmarks are
scripts, not timed tests. Older analyses, with the commits that measured them, are in
docs/performance-history.md.
"""


def commit() -> str:
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    # this page itself is not code: the sections written before this one leave it changed
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":!docs/performance.md"],
                           cwd=ROOT, capture_output=True, text=True).stdout.strip()
    return head.stdout.strip() + ("+dirty" if dirty else "")


def machine() -> str:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores, {memory:.0f} GiB, Python {platform.python_version()}"


def run_section(section: Section) -> str:
    command = [sys.executable, *section.command]
    shown = "python " + " ".join(section.command)
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    took = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"{shown}: exit {done.returncode}\n{done.stderr[-3000:]}")
    return (f"<!-- bench:{section.name} -->\n## {section.title}\n\n{section.about}\n\n```\n{shown}\n```\n"
            f"Measured at commit `{commit()}` on {dt.date.today().isoformat()} ({machine()}; the command "
            f"took {took / 60:.1f} min).\n\n{done.stdout.strip()}\n<!-- /bench:{section.name} -->\n")


def splice(page: str, name: str, text: str) -> str:
    pattern = re.compile(rf"<!-- bench:{name} -->\n.*?<!-- /bench:{name} -->\n", re.DOTALL)
    return pattern.sub(lambda _: text, page) if pattern.search(page) else page.rstrip("\n") + "\n\n" + text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", choices=[s.name for s in SECTIONS], default=None)
    parser.add_argument("--list", action="store_true", help="the sections and their commands")
    args = parser.parse_args()
    if args.list:
        for s in SECTIONS:
            print(f"{s.name:14s} python {' '.join(s.command)}")
        return
    page = PAGE.read_text() if PAGE.exists() else ""
    if "<!-- bench:" not in page:  # the first run: a new page (with --only: just those sections)
        page = _HEADER
    page = _HEADER + page[page.index("<!-- bench:"):] if "<!-- bench:" in page else page
    for section in SECTIONS:
        if args.only is not None and section.name not in args.only:
            continue
        print(f"running {section.name} ...", file=sys.stderr)
        page = splice(page, section.name, run_section(section))
        PAGE.write_text(page)  # after each section: a long run that stops keeps what it measured
    print(f"wrote {PAGE}", file=sys.stderr)


if __name__ == "__main__":
    main()
