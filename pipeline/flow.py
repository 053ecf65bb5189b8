"""The flow: every stage of a build, in order, built from the config (one explicit list)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.config import Config
from pipeline.optout import Registry
from stages.base import Stage
from stages.decode import Decode
from stages.decontaminate import Decontaminate
from stages.dedup import ExactDedup, NearDedup
from stages.fetch import Fetch
from stages.filters import Filters
from stages.language import Language
from stages.license import License
from stages.metadata import RepoMetadata
from stages.optout import OptOut
from stages.redact import Redact


def build_flow(store_url: str, config: Config, registry: Registry | None = None,
               license_cache: Path | None = None, storage_options: dict[str, Any] | None = None,
               metadata: RepoMetadata | None = None) -> list[Stage]:
    """The stages of a build in the order of the flow. ``registry``: the effective opt-out registry
    (the stage is left out when it has no entry); ``license_cache``: the folder of ScanCode results
    kept across versions; ``storage_options``: the content store's fsspec options; ``metadata``: the
    repository metadata stage (default: none, every metadata column null)."""
    options = tuple(sorted((storage_options or {}).items()))
    fetch = Fetch(store_url, config.fetch, threads=config.execution.fetch_threads, storage_options=options,
                  storage=config.storage)
    decode = Decode(config.decode)
    flow: list[Stage] = [OptOut(registry)] if registry is not None and len(registry) else []
    flow += [
        fetch,
        decode,
        Language(config.language),
        License(config.license, str(license_cache) if license_cache else None, reader=(fetch, decode)),
        Filters(config.filters),
    ]
    if config.decontaminate.enabled:
        flow.append(Decontaminate(config.decontaminate))
    if config.redact.enabled:
        flow.append(Redact(config.redact))
    flow.append(metadata or RepoMetadata())
    flow += [ExactDedup(), NearDedup(config.dedup)]
    return flow
