"""`juststorage deploy generate`: configuration files for each supported platform."""

__all__: list[str] = []
