"""guesslang's model in numpy (``stages.language.guesslang_numpy``) against the same model in TensorFlow
(``stages.language.guesslang.Guesslang``), on real files from this machine.

    python -m benchmarks.guesslang_port [--files 3000] [--seed 7] [--batch 256]

A seeded sample of about ``--files`` files of many languages (the Python standard library and
site-packages, /usr/include, /usr/share, npm's node_modules), each implementation in a fresh
process of its own: the load (TensorFlow's import included), then the scores of every file in
batches of ``--batch`` (the stage's ``guesslang_batch``). Reports the largest difference of a
probability, the files whose most probable label differs, the files whose decision at 0.9 differs
(the label if its probability reaches 0.9, else none), the load's wall and CPU seconds, the
scoring's CPU seconds, and the peak RSS growth over the process's RSS before the load.
Prints a Markdown table. Not a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
STDLIB = Path(sysconfig.get_paths()["stdlib"])
SITE = Path(sysconfig.get_paths()["purelib"])
MAX_BYTES = 2_000_000
THRESHOLD = 0.9
#: where the files come from: (folder, suffixes), each an equal share of the sample
SOURCES = {
    "python": ((STDLIB, SITE), (".py", ".pyi", ".pyx")),
    "c": ((Path("/usr/include"), SITE), (".h", ".c", ".cpp", ".hpp", ".cc")),
    "web": ((SITE, Path("/usr/lib/node_modules"), Path("/usr/share")), (".js", ".ts", ".css", ".html")),
    "data": ((STDLIB, SITE, Path("/usr/share")), (".json", ".toml", ".yaml", ".yml", ".xml", ".csv", ".ini", ".cfg")),
    "docs": ((STDLIB, SITE, Path("/usr/lib/node_modules")), (".md", ".rst", ".txt")),
    "scripts": (
        (Path("/usr/share"), Path("/usr/lib/node_modules"), Path("/usr/bin")),
        (".sh", ".pl", ".pm", ".rb", ".lua", ".tcl", ".el", ".vim", ".awk", ".m4", ".cmake", ".bat", ".ps1"),
    ),
}


def sample(files: int, seed: int) -> list[str]:
    """Paths of about ``files`` regular files, an equal share from each source, in a seeded order."""
    share = files // len(SOURCES) + 1
    out: list[str] = []
    for name, (roots, suffixes) in SOURCES.items():
        found = set()
        for root in roots:
            for folder, _, names in os.walk(root):
                found.update(os.path.join(folder, n) for n in names if os.path.splitext(n)[1] in suffixes)
        paths = sorted(found)
        random.Random(f"{seed}:{name}").shuffle(paths)
        taken = 0
        for path in paths:
            if taken == share:
                break
            if os.path.islink(path) or not os.path.isfile(path) or os.path.getsize(path) > MAX_BYTES:
                continue
            out.append(path)
            taken += 1
    return out


def _memory() -> dict[str, int]:
    """This process's current and peak RSS, bytes (Linux)."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return {key: int(fields[key].split()[0]) * 1024 for key in ("VmRSS", "VmHWM")}


def child(implementation: str, paths_file: Path, out: Path, batch: int) -> None:
    """One implementation in this (fresh) process: load, score, write the scores and the figures."""
    from stages.language.guesslang import guesslang_model_dir  # the stage's own import, before the clock

    texts = [Path(p).read_bytes() for p in json.loads(paths_file.read_text())]
    model_dir = guesslang_model_dir()
    before = _memory()
    wall, cpu = time.perf_counter(), time.process_time()
    if implementation == "tensorflow":
        from stages.language.guesslang import Guesslang

        model = Guesslang(model_dir)
    else:
        from stages.language.guesslang_numpy import GuesslangNumpy

        model = GuesslangNumpy(model_dir)
    load_wall, load_cpu = time.perf_counter() - wall, time.process_time() - cpu
    cpu = time.process_time()
    scores = np.array(model.scores(texts, batch), np.float32)
    score_cpu = time.process_time() - cpu
    after = _memory()
    np.save(out, scores)
    figures = {
        "load_wall": load_wall, "load_cpu": load_cpu, "score_cpu": score_cpu,
        "peak_rss_delta": after["VmHWM"] - before["VmRSS"], "rss_delta": after["VmRSS"] - before["VmRSS"],
        "tensorflow_imported": "tensorflow" in sys.modules, "columns": [list(c) for c in model.columns],
    }
    print(json.dumps(figures))


def run(implementation: str, paths_file: Path, out: Path, batch: int) -> dict:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    command = [sys.executable, "-m", "benchmarks.guesslang_port", "--child", implementation,
               "--paths", str(paths_file), "--out", str(out), "--batch", str(batch)]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{implementation}: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--child", choices=("tensorflow", "numpy"), help=argparse.SUPPRESS)
    parser.add_argument("--paths", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.paths, args.out, args.batch)
        return

    paths = sample(args.files, args.seed)
    sizes = [os.path.getsize(p) for p in paths]
    with tempfile.TemporaryDirectory() as folder:
        paths_file = Path(folder, "paths.json")
        paths_file.write_text(json.dumps(paths))
        figures, scores = {}, {}
        for implementation in ("tensorflow", "numpy"):
            out = Path(folder, f"{implementation}.npy")
            figures[implementation] = run(implementation, paths_file, out, args.batch)
            scores[implementation] = np.load(out)
    tf_p, np_p = scores["tensorflow"], scores["numpy"]
    if figures["tensorflow"]["columns"] != figures["numpy"]["columns"]:
        raise SystemExit("the two implementations' columns differ")
    delta = np.abs(tf_p - np_p)
    argmax = int((tf_p.argmax(1) != np_p.argmax(1)).sum())

    def decisions(p: np.ndarray) -> np.ndarray:
        return np.where(p.max(1) >= THRESHOLD, p.argmax(1), -1)

    decided = int((decisions(tf_p) != decisions(np_p)).sum())
    suffixes = {os.path.splitext(p)[1] for p in paths}
    print(f"{len(paths)} files ({sum(sizes) / 1e6:.1f} MB, {len(suffixes)} suffixes; seed {args.seed}), "
          f"batch {args.batch}; {int((decisions(tf_p) >= 0).sum())} decided at {THRESHOLD} by TensorFlow\n")
    print(f"max |Δp| = {delta.max():.3g} (mean {delta.mean():.2g}); argmax differs: {argmax}; "
          f"decision at {THRESHOLD} differs: {decided}; probabilities 0 in one only: "
          f"{int(((tf_p == 0) != (np_p == 0)).sum())}\n")
    print("| | load wall s | load CPU s | scoring CPU s | ms CPU / file | peak RSS Δ MB | RSS Δ MB | TF imported |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for implementation, f in figures.items():
        print(f"| {implementation} | {f['load_wall']:.3f} | {f['load_cpu']:.3f} | {f['score_cpu']:.2f} | "
              f"{1e3 * f['score_cpu'] / len(paths):.2f} | {f['peak_rss_delta'] / 2**20:.0f} | "
              f"{f['rss_delta'] / 2**20:.0f} | {f['tensorflow_imported']} |")


if __name__ == "__main__":
    main()
