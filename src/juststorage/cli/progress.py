"""Transfer progress on stderr: bytes done / total, rate and ETA across all parts
(and, for a tree, across all files: one combined line).

On a terminal one line is redrawn in place; otherwise (a log, a pipe) a plain
line is written every few seconds. Bytes found already transferred by an earlier
run (a resumed download or upload), or not sent because the server already held
them, count as done but not towards the rate. Of a transfer of unknown size
(stdin) only the bytes and the rate are shown, never a percentage. Parallel parts
and files report from several threads, so every update takes a lock.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

PROGRESS_MIN_BYTES = 8 * 1024 * 1024
_TTY_INTERVAL_S = 0.2
_PLAIN_INTERVAL_S = 2.0


def human_size(n: float) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class Progress:
    """Shown only for transfers of `min_bytes` and more (or of unknown size), on a
    terminal by default; `enabled` True/False forces it on or off. With `files`, the
    line also counts finished files (`file_done()`)."""

    def __init__(
        self,
        total: int | None,
        label: str,
        enabled: bool | None,
        stream: TextIO | None = None,
        *,
        files: int | None = None,
        min_bytes: int = PROGRESS_MIN_BYTES,
    ) -> None:
        self._stream = stream or sys.stderr
        self._tty = self._stream.isatty()
        show = enabled if enabled is not None else self._tty
        self._active = bool(show) and (total is None or total >= min_bytes)
        self._total = total
        self._label = label
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._drawn = 0.0
        self._done = 0
        self._moved = 0  # by this run: the rate's numerator
        self._skipped = 0
        self._held = 0
        self._files = files
        self._files_done = 0

    def resumed(self, n: int) -> None:
        """`n` bytes were already there from an earlier run."""
        with self._lock:
            self._done += n
            self._skipped += n
        if self._active:
            self._write(f"{self._label}: resuming, {human_size(n)} already done", newline=True)

    def skipped(self, n: int) -> None:
        """`n` bytes count as done without being moved: the server already held them."""
        with self._lock:
            self._done += n
            self._held += n

    def file_done(self) -> None:
        with self._lock:
            self._files_done += 1

    def message(self, text: str, *, err: bool = False) -> None:
        """Print a line (stdout, or stderr with `err`) without tearing the progress line."""
        with self._lock:
            redraw = self._active and self._tty and self._drawn > 0
            if redraw:
                self._stream.write("\r\x1b[K")
                self._stream.flush()
            target = sys.stderr if err else sys.stdout
            target.write(text + "\n")
            target.flush()
            if redraw:
                self._write(self.line(), newline=False)

    def __call__(self, n: int) -> None:
        with self._lock:
            self._done += n
            self._moved += n
            now = time.monotonic()
            interval = _TTY_INTERVAL_S if self._tty else _PLAIN_INTERVAL_S
            if not self._active or now - self._drawn < interval:
                return
            self._drawn = now
            line = self.line(now)
        self._write(line, newline=not self._tty)

    def rate(self, now: float | None = None) -> float:
        elapsed = max((now or time.monotonic()) - self._started, 1e-6)
        return self._moved / elapsed

    def line(self, now: float | None = None) -> str:
        rate = self.rate(now)
        text = f"{self._label}: "
        if self._files is not None:
            text += f"{self._files_done}/{self._files} files, "
        text += human_size(self._done)
        if self._total:
            percent = 100 * self._done / self._total
            text += f" / {human_size(self._total)} ({percent:.0f}%)"
        text += f"  {rate / 2**20:.1f} MiB/s"
        if self._total and rate > 0:
            text += f"  ETA {_clock(max(0, self._total - self._done) / rate)}"
        return text

    def _write(self, text: str, *, newline: bool) -> None:
        if self._tty and not newline:
            self._stream.write(f"\r{text}\x1b[K")
        elif self._tty:
            self._stream.write(f"\r{text}\x1b[K\n")
        else:
            self._stream.write(text + "\n")
        self._stream.flush()

    def close(self) -> None:
        if not self._active:
            return
        elapsed = time.monotonic() - self._started
        files = f"{self._files_done} files, " if self._files is not None else ""
        summary = (
            f"{self._label}: {files}{human_size(self._done)} in {_clock(elapsed)}, "
            f"{human_size(self._moved)} transferred at {self.rate() / 2**20:.1f} MiB/s"
        )
        if self._skipped:
            summary += f" ({human_size(self._skipped)} resumed)"
        if self._held:
            summary += f" ({human_size(self._held)} already stored)"
        self._write(summary, newline=True)
