"""The run configuration: typed, frozen, loaded from a TOML file, hashed into the manifest.

One convention for every stage: its config is a frozen dataclass defined beside the stage (its
defaults live there and nowhere else), and ``Config`` has one section per stage. The sections that
are not a stage's (walk, output, opt-out, execution) are defined here.

Every field that can change the output is part of ``Config.digest()``; ``execution`` settings
(threads) change only speed and are recorded but not hashed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.errors import PipelineError
from pipeline.storage import StorageConfig
from stages.decode import DecodeConfig
from stages.decontaminate import DecontaminateConfig
from stages.dedup import DedupConfig
from stages.fetch import FetchConfig
from stages.filters import FiltersConfig
from stages.language import LanguageConfig
from stages.license import LicenseConfig, validate_config
from stages.metadata import RepoMetadataConfig
from stages.redact import RedactConfig


@dataclass(frozen=True)
class WalkConfig:
    """Which branch of each snapshot is walked when it has no ``HEAD``."""

    default_branches: tuple[str, ...] = ("refs/heads/main", "refs/heads/master")


@dataclass(frozen=True)
class OutputConfig:
    """Shard layout: content bytes per input partition and per batch, row-group size, zstd level."""

    partition_bytes: int = 256 * 1024 * 1024
    batch_bytes: int = 16 * 1024 * 1024
    row_group_bytes: int = 128 * 1024 * 1024
    zstd_level: int = 3


@dataclass(frozen=True)
class OptOutConfig:
    """The opt-out registry file (docs/license.md), if any; ``--opt-out FILE`` overrides it. Its path
    is not hashed into the config: the registry's SHA-256 is part of the version's identity instead."""

    registry: str = ""


@dataclass(frozen=True)
class ExecutionConfig:
    """Speed only, never the output: not part of the config hash.

    ``fetch_threads``: content-store reads in flight per worker. ``components_partition_edges``:
    near-duplicate edges per partition in the connected-components rounds. ``checkpoint``: leave a
    checked checkpoint per finished input partition, so that a killed run resumes (off: a rerun
    starts over). ``in_process_below_mb``: a local run whose export's ORC tables total less than
    this (MB, from the listing) runs in the driver's own process, one worker with ``--threads``
    threads, as does any ``--workers 1`` run: no worker processes to start, and every model or
    index loaded once instead of once per process. 0 turns the size rule off.
    ``local_engine_below_mb``: such an in-process run, on an export whose ORC tables total less than
    this (MB), runs without Dask (``pipeline.local_build``: the same shards, none of Dask's fixed
    cost; its walk holds the export's tables and the walk's rows in memory: docs/scale.md); a larger
    one runs on one Dask worker in this process. 0: always Dask.
    """

    fetch_threads: int = 8
    in_process_below_mb: float = 8.0
    local_engine_below_mb: float = 64.0
    components_partition_edges: int = 1_000_000
    checkpoint: bool = True


@dataclass(frozen=True)
class Config:
    """The whole configuration of a run."""

    walk: WalkConfig = field(default_factory=WalkConfig)
    fetch: FetchConfig = field(default_factory=FetchConfig)
    decode: DecodeConfig = field(default_factory=DecodeConfig)
    language: LanguageConfig = field(default_factory=LanguageConfig)
    license: LicenseConfig = field(default_factory=LicenseConfig)
    filters: FiltersConfig = field(default_factory=FiltersConfig)
    decontaminate: DecontaminateConfig = field(default_factory=DecontaminateConfig)
    redact: RedactConfig = field(default_factory=RedactConfig)
    dedup: DedupConfig = field(default_factory=DedupConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    opt_out: OptOutConfig = field(default_factory=OptOutConfig)
    repo_metadata: RepoMetadataConfig = field(default_factory=RepoMetadataConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    execution: ExecutionConfig = field(default_factory=ExecutionConfig)

    def to_dict(self) -> dict[str, Any]:
        """The configuration as plain JSON-able data."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def digest(self) -> str:
        """SHA-256 of the canonical JSON of every setting that can change the output."""
        # speed, how bytes are read, and files whose own sha256 is part of the version's identity
        unhashed = ("execution", "opt_out", "storage", "repo_metadata")
        hashed = {k: v for k, v in self.to_dict().items() if k not in unhashed}
        return hashlib.sha256(json.dumps(hashed, sort_keys=True).encode()).hexdigest()


def load_config(path: Path | None) -> Config:
    """The defaults, overridden by the TOML file at ``path``; one clear error on any bad key or value."""
    if path is None:
        return Config()
    try:
        data = tomllib.loads(Path(path).read_text())
    except FileNotFoundError as e:
        raise PipelineError(f"{path}: config file does not exist") from e
    except tomllib.TOMLDecodeError as e:
        raise PipelineError(f"{path}: not valid TOML ({e})") from e
    sections: dict[str, Any] = {}
    for section_field in dataclasses.fields(Config):
        values = data.pop(section_field.name, {})
        sections[section_field.name] = _section(path, section_field.name, section_field.default_factory(), values)
    if data:
        raise PipelineError(f"{path}: unknown config section(s) {', '.join(sorted(data))}")
    config = Config(**sections)
    validate_config(config.license)  # SPDX ids in allow / deny / ignore
    if config.dedup.bands * config.dedup.rows > config.dedup.num_perm:
        d = config.dedup
        raise PipelineError(f"{path}: [dedup] bands x rows ({d.bands} x {d.rows}) exceeds num_perm ({d.num_perm})")
    if not 0 < config.dedup.threshold <= 1:
        raise PipelineError(f"{path}: [dedup] threshold must be in (0, 1]")
    return config


#: Numbers for which 0 means "off".
ZERO_ALLOWED = frozenset({("execution", "in_process_below_mb"), ("execution", "local_engine_below_mb")})


def _section(path: Path, name: str, default: Any, values: dict[str, Any]) -> Any:
    known = {f.name: f for f in dataclasses.fields(default)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise PipelineError(f"{path}: [{name}] has unknown key(s) {', '.join(unknown)}")
    converted = {}
    for key, value in values.items():
        expected = getattr(default, key)
        if isinstance(expected, tuple):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise PipelineError(f"{path}: [{name}] {key} must be a list of strings")
            value = tuple(value)
        elif isinstance(expected, str):
            if not isinstance(value, str):
                raise PipelineError(f"{path}: [{name}] {key} must be a string, got {value!r}")
        elif isinstance(expected, bool):
            if not isinstance(value, bool):
                raise PipelineError(f"{path}: [{name}] {key} must be true or false, got {value!r}")
        elif isinstance(expected, int) and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
            raise PipelineError(f"{path}: [{name}] {key} must be a positive integer, got {value!r}")
        elif isinstance(expected, float) and (
            isinstance(value, bool) or not isinstance(value, int | float) or value < 0
            or value == 0 and (name, key) not in ZERO_ALLOWED
        ):
            raise PipelineError(f"{path}: [{name}] {key} must be a positive number, got {value!r}")
        converted[key] = value
    try:
        return dataclasses.replace(default, **converted)
    except ValueError as e:  # a section's own checks (e.g. [language] guesslang_threshold)
        raise PipelineError(f"{path}: {e}") from e
