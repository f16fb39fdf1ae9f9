"""Options every platform's generator takes."""

from __future__ import annotations

import re
from dataclasses import dataclass

_APP_NAME = re.compile(r"[a-z]([a-z0-9-]{0,61}[a-z0-9])?")
_REGION = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")


class DeployError(ValueError):
    """The files cannot be generated or written as asked."""


@dataclass(frozen=True, slots=True)
class DeployOptions:
    app_name: str = "juststorage"
    region: str | None = None

    def __post_init__(self) -> None:
        if not _APP_NAME.fullmatch(self.app_name):
            raise DeployError(
                f"app name {self.app_name!r}: use 1-63 lower-case letters, digits and '-',"
                " starting with a letter"
            )
        if self.region is not None and not _REGION.fullmatch(self.region):
            raise DeployError(f"region {self.region!r}: use lower-case letters, digits and '-'")
