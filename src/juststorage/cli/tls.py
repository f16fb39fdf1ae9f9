"""`--ca-cert` and `--insecure`: how the object commands check the server's certificate.

Without them the SDK trusts the platform's certificates (and `SSL_CERT_FILE` /
`SSL_CERT_DIR`) and follows `HTTPS_PROXY` / `NO_PROXY`. The options do not change
the commands' signatures: click hands their values to `ctx.meta`, and
`client_tls()` turns them into the SDK client's keyword arguments.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

_CA_CERT = "juststorage.ca_cert"
_INSECURE = "juststorage.insecure"
INSECURE_WARNING = (
    "Warning: --insecure: the server's certificate is not verified, so anyone on the "
    "network path can read and change what is sent, credential included"
)


def _remember(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    ctx.meta[_CA_CERT if param.name == "ca_cert" else _INSECURE] = value
    return value


def tls_options(command: Any) -> Any:
    """`--ca-cert FILE` and `--insecure` on an object command."""
    command = click.option(
        "--insecure",
        is_flag=True,
        expose_value=False,
        callback=_remember,
        help="Do not verify the server's TLS certificate (a warning says so).",
    )(command)
    return click.option(
        "--ca-cert",
        metavar="FILE",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        envvar="JUSTSTORAGE_CA_CERT",
        expose_value=False,
        callback=_remember,
        help="PEM file of the CA certificates to trust instead of the system's"
        " [env JUSTSTORAGE_CA_CERT; the system's store follows SSL_CERT_FILE].",
    )(command)


def client_tls() -> dict[str, Any]:
    """The SDK client's `ca_cert=` / `verify=` for the running command."""
    ctx = click.get_current_context(silent=True)
    meta = ctx.meta if ctx is not None else {}
    if meta.get(_INSECURE):
        click.echo(INSECURE_WARNING, err=True)
        return {"verify": False}
    ca_cert = meta.get(_CA_CERT)
    return {"ca_cert": ca_cert} if ca_cert is not None else {}
