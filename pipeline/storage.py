"""Opening remote storage: fsspec options for ``s3://`` (anonymous unless credentials are
configured, endpoints, requester pays), retries with backoff for transient errors, and the
classification of read errors into what a user can act on.

``s3://`` URLs are anonymous by default: the public Software Heritage bucket needs no account.
Configure credentials with ``[storage] profile`` (an AWS profile) or ``anon = false`` (the AWS SDK's
usual chain: environment, ``~/.aws``, instance role). ``AWS_ENDPOINT_URL`` (or
``AWS_ENDPOINT_URL_S3``), the AWS SDKs' standard variables, point at a non-AWS endpoint, as does
``[storage] endpoint_url``. Nothing here is ever logged or written to a manifest.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class StorageConfig:
    """The ``[storage]`` section: how ``s3://`` URLs (export and content store) are opened. Not part
    of the output's identity (not hashed): the same bytes read another way give the same dataset.

    ``anon``: read without credentials (default). ``profile``: an AWS profile to read with (implies
    credentials). ``endpoint_url``: a non-AWS S3 endpoint (MinIO, Ceph, a mirror); default: the
    ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` variables, else AWS. ``requester_pays``: the
    reader pays for the transfer. ``retries``: attempts after the first for transient errors
    (throttling, timeouts, 5xx, dropped connections), with exponential backoff from
    ``backoff_s``, capped at 20 s a wait.
    """

    anon: bool = True
    profile: str = ""
    endpoint_url: str = ""
    requester_pays: bool = False
    retries: int = 4
    backoff_s: float = 0.25


def fsspec_options(url: str, storage: StorageConfig, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The fsspec options for opening ``url``; ``extra`` (``--storage-option KEY=VALUE``) wins."""
    options: dict[str, Any] = {}
    if url.startswith(("s3://", "s3a://")):
        if storage.profile:
            options["profile"] = storage.profile
        else:
            options["anon"] = storage.anon
        endpoint = storage.endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        if endpoint:
            options["endpoint_url"] = endpoint
        if storage.requester_pays:
            options["requester_pays"] = True
        # one GET per blob: with more, s3fs asks each object's size first (a HEAD, twice the round
        # trips, and refused to anonymous readers by some S3-protocol servers)
        options["max_concurrency"] = 1
    options.update(extra or {})
    return options


# ---------------------------------------------------------------- read errors
MISSING, FORBIDDEN, UNREACHABLE, FAILED = "missing", "forbidden", "unreachable", "failed"


def classify(error: BaseException) -> str:
    """What a read error means: the object is ``missing``, access is ``forbidden``, the store is
    ``unreachable`` (no connection could be made), or the read ``failed`` (anything else: a
    timeout, a 5xx, a dropped connection, which may pass)."""
    if isinstance(error, FileNotFoundError):
        return MISSING
    if isinstance(error, PermissionError):
        return FORBIDDEN
    names = {cls.__name__ for cls in type(error).__mro__}
    if isinstance(error, ConnectionRefusedError) or names & {"EndpointConnectionError", "ClientConnectorError",
                                                              "ConnectionRefusedError", "NoCredentialsError"}:
        return UNREACHABLE
    text = str(error)
    if "AccessDenied" in text or "Forbidden" in text or "403" in text.split(":", 1)[0]:
        return FORBIDDEN
    if "NoSuchKey" in text or "NoSuchBucket" in text or "Not Found" in text:
        return MISSING
    if "Cannot connect to host" in text or "Connection refused" in text or "Could not connect" in text:
        return UNREACHABLE
    return FAILED


def with_retries(call: Callable[[], T], config: StorageConfig, sleep: Callable[[float], None] = time.sleep) -> T:
    """``call()``, retried on transient errors (``failed``; ``unreachable`` once, in case the
    endpoint is restarting) up to ``config.retries`` times with jittered exponential backoff.
    ``missing`` and ``forbidden`` are answers, not accidents: raised at once."""
    attempt = 0
    while True:
        try:
            return call()
        except Exception as e:
            kind = classify(e)
            if kind in (MISSING, FORBIDDEN) or attempt >= config.retries or is_parse_error(e):
                raise
            if kind == UNREACHABLE and attempt >= 1:  # no connection twice: s3fs retried inside each try too
                raise
            # jitter from a fixed-seed generator would be shared state; time-based jitter is harmless here
            wait = min(20.0, config.backoff_s * (2**attempt)) * (0.5 + random.random() / 2)  # noqa: S311
            sleep(wait)
            attempt += 1


def is_parse_error(error: BaseException) -> bool:
    """pyarrow's own errors (a file that does not parse): reading it again gives the same bytes.
    pyarrow raises its ``ArrowException`` kinds, or a bare ``OSError`` with no errno (a file that is
    too short or has no ORC footer); real I/O errors are subclasses or carry an errno."""
    if any(cls.__module__.startswith("pyarrow") for cls in type(error).__mro__):
        return True
    return type(error) is OSError and error.errno is None
