"""Which certificates a client trusts: a CA file, the platform's, or none."""

from __future__ import annotations

import os
import ssl
from typing import Union

import certifi

# A path as the caller has it; evaluated at run time, so no `str | PathLike` (3.10).
CAFile = Union[str, "os.PathLike[str]"]  # noqa: UP007


def ssl_context(ca_cert: CAFile | None = None, verify: bool = True) -> ssl.SSLContext | bool:
    """What httpx's `verify=` gets.

    - `ca_cert`: trust exactly the PEM certificates in that file (a private CA),
      as `curl --cacert` does.
    - otherwise the platform's store (OpenSSL's default paths, which follow
      `SSL_CERT_FILE` and `SSL_CERT_DIR`; on Windows and macOS, the system's), plus
      certifi's bundle when neither variable is set, so a Python without a
      system store (python.org's macOS builds) still verifies public servers.
    - `verify=False`: no verification at all (tests, a server being set up).
    """
    if not verify:
        return False
    if ca_cert is not None:
        path = os.fspath(ca_cert)
        if not os.path.isfile(path):
            raise ValueError(f"ca_cert: no such file: {path}")
        try:
            return ssl.create_default_context(cafile=path)
        except ssl.SSLError as exc:
            raise ValueError(f"ca_cert: {path} holds no usable PEM certificate ({exc})") from None
    context = ssl.create_default_context()
    if not (os.environ.get("SSL_CERT_FILE") or os.environ.get("SSL_CERT_DIR")):
        context.load_verify_locations(cafile=certifi.where())
    return context
