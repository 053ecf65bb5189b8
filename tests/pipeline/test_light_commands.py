"""Commands that read a finished version load no stage: no libenry, ScanCode, TensorFlow or Dask."""

import subprocess
import sys
from pathlib import Path

HEAVY = ("enry", "stages", "tensorflow", "licensedcode", "dask", "distributed")


def test_verify_inspect_and_versions_import_no_stage(built_sample: Path) -> None:
    code = (
        "import sys\nfrom pipeline.cli import main\n"
        f"assert main(['verify', '2.1', '--output', {str(built_sample)!r}]) == 0\n"
        f"assert main(['inspect', '2.1', '--output', {str(built_sample)!r}]) == 0\n"
        f"assert main(['versions', '--output', {str(built_sample)!r}]) == 0\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"
