"""Per-process resources: keyed by the stage's value (its config), loaded once, safe across threads."""

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa

from pipeline.optout import load_registry
from pipeline.resources import loaded, resource
from stages.base import RowStage, StageResult
from stages.optout import OptOut

LOADS: list[int] = []


@dataclass(frozen=True)
class Counting(RowStage):
    """A stage whose setup counts how often it runs, and is slow enough for threads to race."""

    level: int
    name: ClassVar[str] = "counting"
    reads_content: ClassVar[bool] = False

    def setup(self) -> Any:
        import time

        LOADS.append(self.level)
        time.sleep(0.05)
        return {"level": self.level}

    def process(self, table: pa.Table, resource: Any) -> StageResult:
        return StageResult(table, table.slice(0, 0))


def test_one_load_per_config_even_when_threads_race() -> None:
    LOADS.clear()
    got: list[Any] = []
    threads = [threading.Thread(target=lambda k=k: got.append(resource(Counting(k % 2)))) for k in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(LOADS) == [0, 1]  # one load per distinct config, not one per thread
    assert {id(r) for r in got if r["level"] == 0} == {id(resource(Counting(0)))}
    assert resource(Counting(1)) is not resource(Counting(0))


def test_an_opt_out_registry_is_a_value(tmp_path: Path) -> None:
    """Two loads of one registry file are one key (a repr with a memory address would add one per task)."""
    file = tmp_path / "optout.txt"
    file.write_text("https://github.com/a/b 2024-01-01\n")
    one, two = OptOut(load_registry(file)), OptOut(load_registry(file))
    assert one == two and hash(one) == hash(two)
    resource(one)
    held = loaded()
    resource(two)
    assert loaded() == held  # no second entry for the same registry
    file.write_text("https://github.com/a/c 2024-01-01\n")
    assert OptOut(load_registry(file)) != one
