"""Every relative link in the repository's Markdown points at a file inside it.

A person who clones the repository has nothing beside it: a link to
`../shared/…` or to a file that was renamed is a dead end.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# [text](target) and [label]: target, outside code spans and fenced blocks.
_INLINE = re.compile(r"(?<!\\)\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE = re.compile(r"^\s*\[[^\]]+\]:\s*(\S+)", re.MULTILINE)
_CODE_SPAN = re.compile(r"`[^`\n]*`")


def _markdown_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.md"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.split()
    return [ROOT / name for name in listed if (ROOT / name).is_file()]


def _targets(text: str) -> list[str]:
    prose = re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)
    prose = _CODE_SPAN.sub("", prose)
    return _INLINE.findall(prose) + _REFERENCE.findall(prose)


def _problem(source: Path, target: str) -> str | None:
    if re.match(r"^(https?|mailto):", target) or target.startswith("#"):
        return None
    if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("/"):
        return "not a relative link"
    path = (source.parent / target.split("#", 1)[0]).resolve()
    if not path.is_relative_to(ROOT):
        return "leaves the repository"
    if not path.exists():
        return "no such file"
    return None


def test_markdown_links_stay_inside_the_repository() -> None:
    files = _markdown_files()
    assert ROOT / "README.md" in files and ROOT / "docs" / "api.md" in files
    problems = [
        f"{source.relative_to(ROOT)}: {target} ({problem})"
        for source in files
        for target in _targets(source.read_text(encoding="utf-8"))
        if (problem := _problem(source, target)) is not None
    ]
    assert problems == []


def test_the_checker_sees_a_link_out_of_the_repository() -> None:
    readme = ROOT / "README.md"
    assert _problem(readme, "../shared/SPEC.md") == "leaves the repository"
    assert _problem(readme, "docs/missing.md") == "no such file"
    assert _problem(readme, "docs/api.md#errors") is None
    assert _targets("see [x](../a.md) and `[y](../b.md)`") == ["../a.md"]
