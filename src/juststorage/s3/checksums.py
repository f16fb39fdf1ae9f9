"""The S3 checksums a request may carry (`x-amz-checksum-*`, header or trailer).

CRC32 comes from zlib, CRC32C from google-crc32c (a C implementation; see
docs/architecture.md's dependency list), MD5 and SHA-1/256/512 from hashlib. CRC64NVME and
the xxHash family are refused with InvalidRequest: no library the project trusts
computes them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import zlib
from collections.abc import Callable
from typing import Protocol

import google_crc32c

from juststorage.s3.auth_errors import S3AuthError

HEADER_PREFIX = "x-amz-checksum-"
# Names S3 defines that this server cannot compute.
_REFUSED = frozenset({"crc64nvme", "xxhash64", "xxhash3", "xxhash128"})


class Checksum(Protocol):
    def update(self, data: bytes) -> None: ...

    def b64digest(self) -> str: ...


class _Crc32:
    __slots__ = ("_value",)

    def __init__(self) -> None:
        self._value = 0

    def update(self, data: bytes) -> None:
        self._value = zlib.crc32(data, self._value)

    def b64digest(self) -> str:
        return base64.b64encode(self._value.to_bytes(4, "big")).decode("ascii")


class _Crc32c:
    __slots__ = ("_value",)

    def __init__(self) -> None:
        self._value = 0

    def update(self, data: bytes) -> None:
        self._value = google_crc32c.extend(self._value, data)

    def b64digest(self) -> str:
        return base64.b64encode(self._value.to_bytes(4, "big")).decode("ascii")


class _Hashlib:
    __slots__ = ("_hash",)

    def __init__(self, name: str) -> None:
        self._hash = hashlib.new(name)

    def update(self, data: bytes) -> None:
        self._hash.update(data)

    def b64digest(self) -> str:
        return base64.b64encode(self._hash.digest()).decode("ascii")


_ALGORITHMS: dict[str, tuple[Callable[[], Checksum], int]] = {
    # name -> (factory, digest bytes)
    "crc32": (_Crc32, 4),
    "crc32c": (_Crc32c, 4),
    "md5": (lambda: _Hashlib("md5"), 16),
    "sha1": (lambda: _Hashlib("sha1"), 20),
    "sha256": (lambda: _Hashlib("sha256"), 32),
    "sha512": (lambda: _Hashlib("sha512"), 64),
}
SUPPORTED = frozenset(_ALGORITHMS)


def algorithm_of(header_name: str) -> str:
    """`x-amz-checksum-crc32` -> `crc32`.

    Raises:
        S3AuthError: InvalidRequest for a name that is no checksum this server computes.
    """
    name = header_name.strip().lower()
    algorithm = name.removeprefix(HEADER_PREFIX)
    if not name.startswith(HEADER_PREFIX) or not algorithm:
        raise S3AuthError("InvalidRequest", f"{header_name!r} is not an x-amz-checksum-* name")
    if algorithm in _REFUSED:
        raise S3AuthError(
            "InvalidRequest",
            f"the checksum algorithm {algorithm.upper()} is not supported here;"
            f" use one of {', '.join(sorted(a.upper() for a in SUPPORTED))}",
        )
    if algorithm not in _ALGORITHMS:
        raise S3AuthError("InvalidRequest", f"unknown checksum algorithm {algorithm!r}")
    return algorithm


def new_checksum(algorithm: str) -> Checksum:
    """An incremental checksum of a supported algorithm (see `algorithm_of`)."""
    return _ALGORITHMS[algorithm][0]()


def check_value(algorithm: str, value: str) -> str:
    """The base64 value of a checksum as sent, validated for the algorithm's length.

    Raises:
        S3AuthError: InvalidRequest when it is not base64 of the right length.
    """
    value = value.strip()
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != _ALGORITHMS[algorithm][1]:
        raise S3AuthError(
            "InvalidRequest", f"Value for x-amz-checksum-{algorithm} header is invalid."
        )
    return base64.b64encode(raw).decode("ascii")
