"""No tracked text file holds a merge's conflict markers (a generator that rewrites
only part of a page, such as docs/cli.md's, does not remove them)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MARKER = re.compile(rb"^(<{7} |>{7} |={7}$)", re.MULTILINE)
TEXT_SUFFIXES = {".md", ".py", ".toml", ".ts", ".mts", ".cts", ".js", ".mjs", ".go", ".yml"}
TEXT_SUFFIXES |= {".yaml", ".json", ".sh", ".sql", ".txt", ".html", ".css", ".cfg", ".ini"}


def test_no_tracked_file_holds_conflict_markers() -> None:
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.split(b"\0")
    paths = [ROOT / name.decode() for name in listed if name]
    texts = [p for p in paths if p.suffix in TEXT_SUFFIXES or p.name == "Makefile"]
    assert len(texts) > 100  # the listing worked
    marked = [
        str(p.relative_to(ROOT)) for p in texts if p.is_file() and MARKER.search(p.read_bytes())
    ]
    assert marked == []
