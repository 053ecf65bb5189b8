"""Fixtures shared by the stage tests."""

from typing import Any

import pytest

from stages.redact import Redact


@pytest.fixture(scope="module")
def redact() -> Redact:
    """The redaction stage, default config."""
    return Redact()


@pytest.fixture(scope="module")
def plugins(redact: Redact) -> dict[str, Any]:
    """The stage's resource: detect-secrets' plugins, built once for the module."""
    return redact.setup()
