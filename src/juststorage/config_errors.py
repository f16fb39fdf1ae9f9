"""The error a bad setting raises, apart from the settings model (config.py), so the
CLI's error table can name it without importing pydantic at every start."""

from __future__ import annotations


class SettingsError(ValueError):
    """A setting is missing or has a value that cannot be used."""
