"""The first credential of a new deployment: an admin API key, created where the
server's settings are, printed once (`keys create`, SPEC §3).

Every generated deployment sets JWT_SECRET, so the server creates no `admin.key`
on its first start: the operator creates the first key with the command each
platform's module builds from `KEYS_CREATE`, and `deploy generate` prints it
as its last step. Created keys are revocable (`keys revoke`), unlike `API_KEYS`.
"""

from __future__ import annotations

KEYS_CREATE = "keys create --tenant '*' --scope admin"


def token_issue_lines(where: str) -> list[str]:
    """The JWT alternative: a token signed with the deployment's JWT_SECRET, read
    from `where`, issued on the operator's machine (no access to the server)."""
    return [
        f"or, without a shell there: copy JWT_SECRET from {where}, then locally",
        "  JWT_SECRET=... juststorage token issue --sub admin --tenant TENANT --scope admin",
    ]
