"""The S3-compatible gateway (SPEC §8.8)."""
