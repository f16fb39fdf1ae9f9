"""`make bench`: JustStorage against the physical bounds measured in the same run
(docs/benchmarks.md). Run it as `python -m bench` from the repository root."""
