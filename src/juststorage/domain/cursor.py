"""Opaque keyset cursor for listings: the position after the last item of a page."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from juststorage.domain.errors import BadRequest
from juststorage.domain.model import ObjectKey

_MAX_COMMIT_SEQ = 2**63 - 1


@dataclass(frozen=True, slots=True)
class ListCursor:
    """Listing resumes after (key, commit_seq) in (key ascending, commit_seq descending).

    With `rolled_up`, `key` is a common prefix a delimited page ended on (SPEC §8.4)
    and listing resumes past every key that starts with it (`commit_seq` is 0).
    """

    key: str
    commit_seq: int
    rolled_up: bool = False

    @classmethod
    def past(cls, prefix: str) -> ListCursor:
        """The position after every key that starts with `prefix`."""
        return cls(prefix, 0, rolled_up=True)

    def encode(self) -> str:
        value: list[object] = [self.key] if self.rolled_up else [self.key, self.commit_seq]
        raw = json.dumps(value, ensure_ascii=False).encode("utf-8")
        return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")

    @classmethod
    def decode(cls, token: str) -> ListCursor:
        """Raises BadRequest for anything this module did not produce."""
        try:
            padded = token + "=" * (-len(token) % 4)
            value = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        except (ValueError, binascii.Error, UnicodeError, RecursionError):
            # RecursionError: deeply nested JSON arrays.
            raise BadRequest("malformed cursor") from None
        if isinstance(value, list) and len(value) == 1 and isinstance(value[0], str):
            if not _is_key(value[0]):  # a common prefix is the start of a key: a key too
                raise BadRequest("malformed cursor")
            return cls.past(value[0])
        if (
            not isinstance(value, list)
            or len(value) != 2
            or not isinstance(value[0], str)
            or type(value[1]) is not int
            or not 0 <= value[1] <= _MAX_COMMIT_SEQ  # a database integer (BIGINT)
            or not _is_key(value[0])
        ):
            raise BadRequest("malformed cursor")
        return cls(value[0], value[1])


def _is_key(text: str) -> bool:
    """A key a listing could have returned: JSON can spell lone surrogates
    (`"\\ud800"`) and NUL, which no database can bind or PostgreSQL store."""
    try:
        ObjectKey(text)
    except BadRequest:
        return False
    return True
