"""Running a child process as another user (needs root)."""

from __future__ import annotations

import os

NOBODY = 65534  # nobody:nogroup on Debian: a uid that exists and owns nothing


def as_nobody() -> None:
    """`preexec_fn`: the child drops root as the image's entry point does."""
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)
