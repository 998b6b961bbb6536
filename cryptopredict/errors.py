"""The one exception hierarchy of cryptopredict (standard library only)."""

from __future__ import annotations

__all__ = [
    "ArtifactError",
    "CryptopredictError",
    "DataSourceError",
    "DataValidationError",
    "TrainingError",
]


class CryptopredictError(Exception):
    """Base of every error this project raises on purpose; its message is meant for a user."""


class DataSourceError(CryptopredictError):
    """Market bars could not be fetched or read (network, HTTP, file or format trouble)."""


class DataValidationError(CryptopredictError):
    """Market bars failed a check before fitting; says which symbol, which check, which rows."""

    def __init__(self, symbol: str, check: str, detail: str, rows: list[str] | None = None) -> None:
        self.symbol = symbol
        self.check = check
        self.detail = detail
        self.rows = list(rows or [])
        msg = f"{symbol}: {check}: {detail}"
        if self.rows:
            msg += "; e.g. " + ", ".join(self.rows[:5])
        super().__init__(msg)


class TrainingError(CryptopredictError):
    """A model could not be fitted, or failed the promotion gate."""


class ArtifactError(CryptopredictError):
    """A forecast artifact is missing, corrupt, tampered with or of an unknown schema version."""


class OlderSchemaError(ArtifactError):
    """A sound artifact of an earlier schema, which this code does not read: it is trained again, not upgraded."""

    def __init__(self, msg: str, version: int) -> None:
        self.version = version
        super().__init__(msg)
