"""Retention (issue 18 item 6): a walk's raw positions are kept for
``walk_raw_retention_days`` after it ends, then reduced to what lasts — the cleaned track
(``walk.track``), the visits (``walk_visit``) and the daily figures (``walk_day``). Each
walk is processed one last time first, so nothing the raw fixes held is lost."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from gis_service.db.engine import get_engine, transaction
from gis_service.settings import Settings
from gis_service.walks import service, store

#: walks reduced per transaction
BATCH = 200


@dataclass
class Pruned:
    walks: int = 0
    points: int = 0
    processed: int = 0
    before: datetime | None = None

    def summary(self) -> str:
        cut = self.before.isoformat(timespec="seconds") if self.before else "-"
        return (
            f"pruned the raw positions of {self.walks} walk(s) ended before {cut}: "
            f"{self.points} position(s) removed, {self.processed} walk(s) processed first; "
            "tracks, visits and daily figures kept"
        )


def prune(
    settings: Settings,
    older_than_days: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> Pruned:
    """Reduce the walks ended more than ``older_than_days`` (default
    ``walk_raw_retention_days``) days ago; ``progress`` hears each batch."""
    days = settings.walk_raw_retention_days if older_than_days is None else older_than_days
    done = Pruned(before=datetime.now(UTC) - timedelta(days=days))
    with get_engine(settings).connect() as conn:
        ids = store.prunable(conn, done.before)
    for start in range(0, len(ids), BATCH):
        batch = ids[start : start + BATCH]
        with transaction(settings) as conn:
            done.processed += service.refresh(
                conn, "w.id = ANY(:ids)", {"ids": batch}, settings.timezone
            )
            done.points += store.prune(conn, batch)
        done.walks += len(batch)
        if progress:
            progress(f"{done.walks} of {len(ids)} walks")
    return done
