"""Terminal progress for long work: a spinner with the current step and elapsed time, or a
bar when the number of steps is known."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

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


@contextmanager
def bar(title: str, total: int) -> Iterator[ProgressFn]:
    """Yield a callback that advances a bar of ``total`` steps by one, showing the step's
    name; the finished bar stays on the terminal."""
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task(title, total=total)

        def step(name: str) -> None:
            progress.update(task, advance=1, description=f"{title}: {name}")

        yield step
        progress.update(task, description=f"{title}: done")
