"""What the tests need of a real S3 server, whichever one it is: SeaweedFS
(seaweedfs.py) or Ceph RGW (radosgw.py). Both take the same fixed keys."""

from __future__ import annotations

from typing import Protocol

# The pytest fixtures (tests/conftest.py) of the real S3 servers, for `params=`.
S3_SERVERS = ("seaweedfs", "radosgw")


class S3Server(Protocol):
    @property
    def endpoint_url(self) -> str: ...

    @property
    def bucket(self) -> str: ...

    def env(self) -> dict[str, str]:
        """The AWS_* settings a JustStorage process needs to reach this server."""
        ...

    def root(self, name: str | None = None) -> str:
        """A fresh `s3://bucket/<prefix>` root."""
        ...
