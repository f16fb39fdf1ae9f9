"""What parallel transfers share without I/O on the network: plans and state files.

A download is written into a temporary file beside its destination, created
exclusively under a random dot-name ending in `.juststorage-part`, so no other
key's download and no file of the user's can own it. A large download is a set of
byte ranges written into that file; which file, which ranges are complete and which
version they belong to live in a state file under `state_dir`, named by a hash of
the destination's path, so a later run resumes them.
A large upload is a multipart session (SPEC §8.2); its id and the digests of the
parts the server acknowledged live in a state file under `state_dir`, named by a
hash of the upload's arguments, so running the same upload again resumes it.
State files are replaced atomically (write a temp file, fsync, rename): a crash
leaves the old state or the new one, never half of one.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import stat
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MiB = 1024 * 1024
PARALLEL_THRESHOLD_BYTES = 64 * MiB
"""Files and objects this large or larger go in parallel parts by default."""
PARALLEL = 4
"""Parts in flight by default."""
RANGE_BYTES = 16 * MiB
"""One download range: the unit of resume and of parallelism."""
PART_MIN_BYTES = 8 * MiB
"""The smallest upload part the client chooses (the server's floor is 5 MiB)."""
MAX_PARTS = 10000
STATE_VERSION = 1
TEMP_SUFFIX = ".juststorage-part"
"""How every temporary download file's name ends (it also starts with a dot)."""
_TEMP_STEM_CHARS = 40  # of the destination's name: keeps the temp name under NAME_MAX


def part_size_for(size: int, floor: int = PART_MIN_BYTES) -> int:
    """Part size for an upload of `size` bytes: at least `floor`, at most 10000 parts."""
    return max(floor, -(-size // MAX_PARTS))


def spans(size: int, part_bytes: int) -> list[tuple[int, int]]:
    """(offset, length) of each part, numbered from 1 by position: part n is spans[n-1]."""
    if size == 0:
        return [(0, 0)]
    return [(start, min(part_bytes, size - start)) for start in range(0, size, part_bytes)]


def default_state_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """`$XDG_CONFIG_HOME/juststorage/transfers` (or `~/.config/...`)."""
    base = environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "juststorage" / "transfers"


def write_json_atomic(path: Path, data: Mapping[str, Any]) -> None:
    """Replace `path` with `data` as JSON; owner-only, durable before the rename."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, json.dumps(data, sort_keys=True).encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temp, path)


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON object in `path`, or None when it is missing or unreadable."""
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def is_temp_name(name: str) -> bool:
    """Whether `name` has the form of a download's temporary file (of any destination)."""
    return name.startswith(".") and name.endswith(TEMP_SUFFIX)


def _temp_prefix(final: Path) -> str:
    return f".{final.name[:_TEMP_STEM_CHARS]}."


def _is_temp_of(final: Path, name: str) -> bool:
    return (
        "/" not in name
        and os.sep not in name
        and name.startswith(_temp_prefix(final))
        and name.endswith(TEMP_SUFFIX)
    )


def temp_beside(final: Path) -> Path:
    """A new empty file in `final`'s directory for a download into `final`.

    Created with O_EXCL under a random name (`.<name>.<random>.juststorage-part`), so
    it never is an existing file: not another download's, not the user's own.
    """
    for _ in range(16):
        candidate = final.with_name(f"{_temp_prefix(final)}{secrets.token_hex(8)}{TEMP_SUFFIX}")
        try:
            fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return candidate
    raise FileExistsError(f"no free temporary name beside {final}")


def download_state_path(state_dir: Path, final: Path) -> Path:
    """The state file of a resumable download into `final`: named by a hash of its path."""
    where = str(final.parent.resolve() / final.name)
    name = hashlib.sha256(where.encode("utf-8", "surrogateescape")).hexdigest()[:32]
    return state_dir / f"download-{name}.json"


@dataclass
class DownloadState:
    """Which ranges of the temporary file `temp` (a name beside the destination) hold
    the object's bytes, for one object version."""

    path: Path
    temp: str
    object_id: str
    content_hash: str
    size: int
    range_bytes: int
    done: set[int] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def load_or_new(
        cls,
        path: Path,
        final: Path,
        object_id: str,
        content_hash: str,
        size: int,
        range_bytes: int,
    ) -> tuple[DownloadState, bool]:
        """The saved state when it names this very version (id, hash and size) and its
        temporary file is still there with that size, else a new one with a new
        temporary file (the stale one removed); the flag says whether it was resumed."""
        data = read_json(path)
        stale = data.get("temp") if data is not None else None
        kept = _kept_temp(final, stale, size)
        if data is not None and kept is not None and data.get("version") == STATE_VERSION:
            same = (
                data.get("object_id") == object_id
                and data.get("content_hash") == content_hash
                and data.get("size") == size
                and isinstance(data.get("range_bytes"), int)
                and data["range_bytes"] > 0
            )
            if same:
                done = {int(i) for i in data.get("done", []) if isinstance(i, int)}
                ranges = int(data["range_bytes"])
                return cls(path, kept, object_id, content_hash, size, ranges, done), True
        if isinstance(stale, str) and _is_temp_of(final, stale):
            final.with_name(stale).unlink(missing_ok=True)  # only ever a name of our own form
        temp = temp_beside(final).name
        return cls(path, temp, object_id, content_hash, size, range_bytes), False

    def ranges(self) -> list[tuple[int, int]]:
        return spans(self.size, self.range_bytes)

    def done_bytes(self) -> int:
        ranges = self.ranges()
        return sum(ranges[i][1] for i in self.done if i < len(ranges))

    def mark_done(self, index: int) -> None:
        """Record range `index` as complete (call only once its bytes are fsynced)."""
        with self._lock:
            self.done.add(index)
            self.save()

    def save(self) -> None:
        write_json_atomic(
            self.path,
            {
                "version": STATE_VERSION,
                "temp": self.temp,
                "object_id": self.object_id,
                "content_hash": self.content_hash,
                "size": self.size,
                "range_bytes": self.range_bytes,
                "done": sorted(self.done),
            },
        )


def _kept_temp(final: Path, name: object, size: int) -> str | None:
    """`name` when it is a temporary file of `final`'s, a regular file of `size` bytes."""
    if not isinstance(name, str) or not _is_temp_of(final, name):
        return None
    try:
        info = final.with_name(name).lstat()
    except OSError:
        return None
    return name if stat.S_ISREG(info.st_mode) and info.st_size == size else None


def upload_state_path(state_dir: Path, identity: Mapping[str, Any]) -> Path:
    """The state file of one upload: named by a hash of what makes it "the same"."""
    name = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:32]
    return state_dir / f"upload-{name}.json"


@dataclass
class UploadState:
    """A multipart upload in progress: its session and the parts the server acknowledged."""

    path: Path
    size: int
    mtime_ns: int
    part_bytes: int
    sha256: str | None
    upload_id: str | None = None
    parts: dict[int, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def load(cls, path: Path, size: int, mtime_ns: int) -> UploadState | None:
        """The saved state, when the file still has the size and mtime it had."""
        data = read_json(path)
        if data is None or data.get("version") != STATE_VERSION:
            return None
        if data.get("size") != size or data.get("mtime_ns") != mtime_ns:
            return None
        part_bytes = data.get("part_bytes")
        if not isinstance(part_bytes, int) or part_bytes <= 0:
            return None
        raw_parts = data.get("parts", {})
        if not isinstance(raw_parts, dict):
            raw_parts = {}
        parts = {int(n): str(d) for n, d in raw_parts.items()}
        upload_id = data.get("upload_id")
        sha256 = data.get("sha256")
        return cls(
            path,
            size,
            mtime_ns,
            part_bytes,
            sha256 if isinstance(sha256, str) else None,
            upload_id if isinstance(upload_id, str) else None,
            parts,
        )

    def record_part(self, number: int, sha256: str) -> None:
        with self._lock:
            self.parts[number] = sha256
            self.save()

    def save(self) -> None:
        write_json_atomic(
            self.path,
            {
                "version": STATE_VERSION,
                "size": self.size,
                "mtime_ns": self.mtime_ns,
                "part_bytes": self.part_bytes,
                "sha256": self.sha256,
                "upload_id": self.upload_id,
                "parts": {str(n): d for n, d in sorted(self.parts.items())},
            },
        )

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)


class Counter:
    """A progress callback safe to call from several threads at once."""

    def __init__(self, progress: Callable[[int], None] | None) -> None:
        self._progress = progress
        self._lock = threading.Lock()

    def __call__(self, n: int) -> None:
        if self._progress is not None:
            with self._lock:
                self._progress(n)


def chunks_of(handle_read: Callable[[int], bytes], length: int, chunk: int) -> Iterator[bytes]:
    """Up to `length` bytes from a reader, in chunks of at most `chunk`."""
    left = length
    while left > 0:
        data = handle_read(min(chunk, left))
        if not data:
            raise OSError("the file ended before the part did (was it truncated?)")
        left -= len(data)
        yield data


def sha256_of_span(path: Path, offset: int, length: int, chunk: int) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        handle.seek(offset)
        for data in chunks_of(handle.read, length, chunk):
            digest.update(data)
    return digest.hexdigest()
