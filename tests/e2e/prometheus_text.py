"""Parse the Prometheus text exposition (what /metrics answers) for assertions."""

from __future__ import annotations

import re

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')

Labels = frozenset[tuple[str, str]]


def parse_samples(text: str) -> dict[tuple[str, Labels], float]:
    """{(sample name, labels): value} for every sample line."""
    samples: dict[tuple[str, Labels], float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        assert match, f"not a sample line: {line!r}"
        name, labels, value = match.groups()
        samples[(name, frozenset(_LABEL.findall(labels or "")))] = float(value)
    return samples


def value(samples: dict[tuple[str, Labels], float], name: str, **labels: str) -> float:
    """The sum of `name` over every sample whose labels include `labels` (0 if none)."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


def family_names(text: str) -> set[str]:
    """Metric family names from `# TYPE` lines, plus every sample name."""
    names = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}
    names |= {name for name, _ in parse_samples(text)}
    return names
