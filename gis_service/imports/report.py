"""The QA report every import returns: what was read, repaired, and found suspicious."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

Progress = Callable[[str], None]


def no_progress(_: str) -> None:
    """Progress sink for callers that do not show any."""


@dataclass
class ImportReport:
    kind: str
    file: str
    level: str | None = None
    source_crs: str | None = None
    encoding: str | None = None
    features: int = 0
    inserted: int = 0
    updated: int = 0
    codes_assigned: int = 0
    parents_inferred: int = 0
    dry_run: bool = False
    notes: list[str] = field(default_factory=list)
    repaired: list[dict[str, Any]] = field(default_factory=list)
    outside_parent: list[dict[str, Any]] = field(default_factory=list)
    overlaps: list[dict[str, Any]] = field(default_factory=list)
    gaps: list[dict[str, Any]] = field(default_factory=list)
    duplicates: list[dict[str, Any]] = field(default_factory=list)
    unlocated: list[dict[str, Any]] = field(default_factory=list)

    @property
    def warnings(self) -> int:
        return sum(
            len(x)
            for x in (
                self.repaired,
                self.outside_parent,
                self.overlaps,
                self.gaps,
                self.duplicates,
                self.unlocated,
            )
        )

    def summary(self) -> str:
        verb = "checked (dry run)" if self.dry_run else "imported"
        what = f"{self.level} units" if self.level else self.kind
        return (
            f"{verb} {self.features} {what} from {self.file}: {self.inserted} new, "
            f"{self.updated} updated; {len(self.repaired)} repaired, "
            f"{len(self.outside_parent)} outside parent, {len(self.overlaps)} overlaps, "
            f"{len(self.gaps)} gaps, {len(self.duplicates)} duplicates, "
            f"{len(self.unlocated)} outside every unit"
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "warnings": self.warnings, "summary": self.summary()}
