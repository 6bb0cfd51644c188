"""Terminal progress for long work: a spinner with the current step and elapsed time."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from gis_service.imports.report import Progress as ProgressFn

console = Console(stderr=True)


@contextmanager
def steps(title: str) -> Iterator[ProgressFn]:
    """Yield a callback that shows each step; finished steps stay listed."""
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as bar:
        task = bar.add_task(title, total=None)

        def step(name: str) -> None:
            bar.update(task, description=f"{title}: {name}")

        yield step
        bar.update(task, description=f"{title}: done", completed=1, total=1)
