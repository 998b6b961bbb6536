"""What one API process holds: the verified artifact and its settings, loaded once at start."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from cryptopredict.artifact import Artifact
from cryptopredict.serving.config import ServeSettings
from cryptopredict.serving.record import PairRecord

__all__ = ["ServingState"]


@dataclass(frozen=True, slots=True)
class ServingState:
    artifact: Artifact
    settings: ServeSettings
    # The artifact's track record by slug, summarised once at start (cryptopredict.serving.record).
    track_record: Mapping[str, PairRecord] = field(default_factory=dict)
