"""FakeLiveness: the `ProcessLiveness` port, with owners a test declares dead."""

from __future__ import annotations


class FakeLiveness:
    """Process identities: this one, and the owners a test declares dead."""

    def __init__(self, identity: str = "this-process") -> None:
        self._identity = identity
        self.dead: set[str] = set()

    def identity(self) -> str:
        return self._identity

    def is_dead(self, owner: str) -> bool:
        return owner in self.dead
