"""What one API process holds: the verified artifact and its settings, loaded once at start."""

from __future__ import annotations

from dataclasses import dataclass

from cryptopredict.artifact import Artifact
from cryptopredict.serving.config import ServeSettings

__all__ = ["ServingState"]


@dataclass(frozen=True, slots=True)
class ServingState:
    artifact: Artifact
    settings: ServeSettings
