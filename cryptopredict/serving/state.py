"""What one API process holds: the verified artifact and its settings, loaded once at start."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from cryptopredict.artifact import Artifact
from cryptopredict.serving.anchor import Anchor, AnchorBoard
from cryptopredict.serving.config import ServeSettings
from cryptopredict.serving.live import LiveFeed
from cryptopredict.serving.track_record import PairRecord

__all__ = ["ServingState"]


@dataclass(frozen=True, slots=True)
class ServingState:
    artifact: Artifact
    settings: ServeSettings
    # The artifact's track record by slug, summarised once at start (cryptopredict.serving.track_record).
    track_record: Mapping[str, PairRecord] = field(default_factory=dict)
    # What answers are anchored at now (the artifact's last closes, or checked live prices).
    board: AnchorBoard = field(default_factory=lambda: AnchorBoard({}))
    # The live price feed, when LIVE_PRICES=alpaca; None when off (no outbound request at all).
    feed: LiveFeed | None = None

    def anchor(self, slug: str) -> Anchor:
        """The anchor a pair's served forecast rests on now."""
        return self.board.current().by_slug[slug]
