"""Generate `_sync.py` (the blocking `Client`) from `_async.py` (`AsyncClient`),
and `_transfers_sync.py` from `_transfers_async.py`.

    python sdks/python/unasync.py          # rewrite the generated files
    python sdks/python/unasync.py --check  # exit 1 when one is stale

One source for both clients, so they cannot drift apart (as httpcore does).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).parent / "src" / "juststorage_client"
RULES: list[tuple[str, str]] = [
    (
        r'^"""`AsyncClient`: the JustStorage API on asyncio\.',
        '"""`Client`: the JustStorage API, blocking.',
    ),
    (
        r"`_sync\.py` is generated from this file by `sdks/python/unasync\.py`; edit here\.",
        "Generated from `_async.py` by `sdks/python/unasync.py`: do not edit.",
    ),
    (
        r"^\"\"\"Large transfers on asyncio: ",
        '"""Large transfers, blocking (threads): ',
    ),
    (
        r"`_transfers_sync\.py` is generated from this file by `[^`]+`; edit here\.",
        "Generated from the asyncio module by `sdks/python/unasync.py`: do not edit.",
    ),
    (r"\b_transfers_async\b", "_transfers_sync"),
    (r"\bjuststorage_client\._async\b", "juststorage_client._sync"),
    (r"\brun_async\b", "run_threads"),
    (r"\bimport asyncio\b", "import time"),
    (r"await asyncio\.sleep\(", "time.sleep("),
    (r"await asyncio\.to_thread\(function, \*args\)", "function(*args)"),
    (r"\bAsyncIterable\b", "Iterable"),
    (r"\bAsyncIterator\b", "Iterator"),
    (r"\bAsyncBaseTransport\b", "BaseTransport"),
    (r"\bAsyncClient\b", "Client"),
    (r"\bAsyncDownload\b", "Download"),
    (r"\baiter_bytes\b", "iter_bytes"),
    (r"\baiter_raw\b", "iter_raw"),
    (r"\baread\b", "read"),
    (r"\baclose\b", "close"),
    (r"__aenter__", "__enter__"),
    (r"__aexit__", "__exit__"),
    (r"__aiter__", "__iter__"),
    (r"\basync def\b", "def"),
    (r"\basync for\b", "for"),
    (r"\basync with\b", "with"),
    (r"\bawait ", ""),
]


FILES = {"_async.py": "_sync.py", "_transfers_async.py": "_transfers_sync.py"}


def generate(source: str, target: str) -> str:
    text = (PACKAGE / source).read_text("utf-8")
    for pattern, replacement in RULES:
        text = re.sub(pattern, replacement, text, flags=re.MULTILINE)
    ruff = Path(sys.executable).parent / "ruff"
    fixed = subprocess.run(
        [
            str(ruff),
            "check",
            "--fix-only",
            "--quiet",
            "--stdin-filename",
            str(PACKAGE / target),
            "-",
        ],
        input=text,
        capture_output=True,
        text=True,
        check=True,
        cwd=PACKAGE,
    ).stdout
    return subprocess.run(
        [str(ruff), "format", "--quiet", "--stdin-filename", str(PACKAGE / target), "-"],
        input=fixed,
        capture_output=True,
        text=True,
        check=True,
        cwd=PACKAGE,
    ).stdout


def main() -> int:
    status = 0
    for source, name in FILES.items():
        target = PACKAGE / name
        text = generate(source, name)
        if "--check" in sys.argv:
            if not target.exists() or target.read_text("utf-8") != text:
                print(f"{name} is stale: run python sdks/python/unasync.py", file=sys.stderr)
                status = 1
            continue
        target.write_text(text, "utf-8")
    return status


if __name__ == "__main__":
    sys.exit(main())
