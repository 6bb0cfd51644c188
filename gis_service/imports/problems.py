"""Fatal problems of an import, collected per feature so one rejection lists them all."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gis_service.errors import ImportRejected


@dataclass
class Problems:
    """Fatal problems: each ``{"feature": n, "problem": text, ...}`` (``field`` names the
    attribute when one is at fault; ``code`` / ``name`` label the feature when known).

    ``feature`` counts from 1 in file order (the row of a CSV after its header); None is a
    problem of the whole file.
    """

    items: list[dict[str, Any]] = field(default_factory=list)

    def add(self, seq: int | None, problem: str, **extra: Any) -> None:
        self.items.append({"feature": seq, "problem": problem, **extra})

    def raise_if_any(self, filename: str) -> None:
        """Raise ImportRejected (HTTP 422) naming the first problem and listing all."""
        if not self.items:
            return
        first = self.items[0]
        where = f"feature {first['feature']}: " if first["feature"] is not None else ""
        more = f" (and {len(self.items) - 1} more)" if len(self.items) > 1 else ""
        raise ImportRejected(
            f"{filename}: {where}{first['problem']}{more}; nothing was imported",
            problems=self.items,
        )
