"""`fsck --repair --from-backup TARGET` (SPEC §8.9; docs/operations.md): the bytes of
a blob fsck finds missing or corrupt, fetched from a backup target and put back at
the blob's address in this deployment.

Blobs are content-addressed in a target (`blobs/<hh>/<hash>`), whichever backup
copied them, so any backup in it serves. The copy is hashed while it streams into
the store's `rewrite`; bytes that do not hash to the blob's name abort the rewrite
(the damaged copy stays as it was, reported), and the blob is read back and
re-hashed once it is written.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

from juststorage.application.backup_format import blob_key
from juststorage.application.backup_ports import BackupTarget
from juststorage.application.blob_ports import BlobStore
from juststorage.application.records import BlobLocation
from juststorage.application.restore import closing_stream
from juststorage.domain.errors import NotFound

__all__ = ["Refill"]


class _Mismatch(Exception):
    def __init__(self, digest: str, size: int) -> None:
        super().__init__(f"{size} bytes hashing to sha256:{digest}")
        self.digest, self.size = digest, size


class Refill:
    """Blobs' bytes from one backup target."""

    def __init__(self, target: BackupTarget) -> None:
        self.target = target
        self.repaired = 0
        self.repaired_bytes = 0

    async def _verified(self, location: BlobLocation, size: int) -> AsyncIterator[bytes]:
        hasher = hashlib.sha256()
        seen = 0
        key = blob_key(location.content_hash.hex)
        async with closing_stream(self.target.get_stream(key)) as stream:
            async for chunk in stream:
                hasher.update(chunk)
                seen += len(chunk)
                yield chunk
        if hasher.hexdigest() != location.content_hash.hex or seen != size:
            raise _Mismatch(hasher.hexdigest(), seen)

    async def put_back(self, blobs: BlobStore, location: BlobLocation, size: int) -> str | None:
        """Rewrite the blob at its address from the backup's copy; None when it is
        whole again, else why not (the backup does not hold it, or holds other bytes).

        Raises what the stores and the target raise when they cannot be reached."""
        described = f"sha256:{location.content_hash.hex}"
        try:
            await blobs.rewrite(location, self._verified(location, size))
        except NotFound:
            return f"the backup holds no copy of {described}"
        except _Mismatch as exc:
            return f"the backup's copy of {described} is damaged too ({exc})"
        if await blobs.digest_of(location) != location.content_hash:
            return f"{described} still reads back wrong after it was rewritten"
        self.repaired += 1
        self.repaired_bytes += size
        return None
