"""Dataset files and versions, access grants and downloads."""

__all__: list[str] = []
