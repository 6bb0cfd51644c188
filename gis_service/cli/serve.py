"""``gis-service serve`` and ``gis-service demo``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import typer
import uvicorn
from rich.console import Console

from gis_service.cli.progress import steps
from gis_service.db import cluster, migrate
from gis_service.demo.run import load_demo
from gis_service.settings import get_settings
from gis_service.supervision import replace_dead_workers_at_once

console = Console(stderr=True)


def serve(
    host: str = typer.Option(None, help="Address to bind (default 127.0.0.1)."),
    port: int = typer.Option(None, help="Port (default 8000)."),
    workers: int = typer.Option(1, help="Worker processes."),
    notify: bool = typer.Option(
        False, "--notify", help="Also run the notification sender (gis-service notify run)."
    ),
) -> None:
    """Serve the API and the pages; with ``--notify`` (``make demo``) the notification
    sender runs beside it as a child process, stopped when the server stops."""
    settings = get_settings()
    host = host or settings.host
    port = port or settings.port
    cluster.start(settings)
    base = f"http://{host}:{port}"
    console.print(f"API docs:  {base}/docs")
    console.print(f"Maps:      {base}/maps/login")
    console.print(f"Phone:     {base}/m/  (grid workers; install it from the browser)")
    console.print(f"Health:    {base}/healthz")
    console.print(f"Units:     {base}/api/v1/units?level=subdistrict")
    console.print(f"Locate:    {base}/api/v1/locate?lon=113.68&lat=34.78")
    replace_dead_workers_at_once()
    sender = _start_sender() if notify else None
    try:
        _serve(host, port, workers, settings.worker_healthcheck_seconds)
    finally:
        if sender is not None:
            sender.terminate()
            sender.wait(timeout=30)


def _start_sender() -> subprocess.Popen:
    """``gis-service notify run`` as a child process (its progress goes to stderr)."""
    console.print("Notify:    the sender runs beside the server (gis-service notify run)")
    return subprocess.Popen([str(Path(sys.executable).parent / "gis-service"), "notify", "run"])


def _serve(host: str, port: int, workers: int, healthcheck_seconds: float) -> None:
    uvicorn.run(
        "gis_service.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        # uvicorn kills a worker that does not answer its supervisor's ping in time (5 s
        # by default) as hung; a worker busy under load (a cube sync, a large analysis
        # holding the GIL) answered late in the soak and was killed, resetting the
        # connections it served. Dead workers are still replaced at once (supervision.py).
        timeout_worker_healthcheck=healthcheck_seconds,
    )


def demo(
    seed: int = typer.Option(2026, help="Seed of the generator."),
    city: bool = typer.Option(
        False,
        "--city",
        help="All twelve Zhengzhou divisions with years of history, for benchmarks "
        "(tens of minutes, several GB; demo/city.py).",
    ),
    cases: int = typer.Option(
        10_000_000, min=0, help="With --city: cases over the whole city and all years."
    ),
    years: int = typer.Option(5, min=1, max=20, help="With --city: years of history."),
    district: list[str] = typer.Option(
        None, "--district", help="With --city: only this division code (repeatable)."
    ),
) -> None:
    """Start the database, migrate, and load the demo city (idempotent). With ``--city``,
    load every division of Zhengzhou with ``--cases`` cases over ``--years`` years."""
    settings = get_settings()
    cluster.start(settings)
    migrate.upgrade(settings)
    if district and not city:
        raise typer.BadParameter("only with --city", param_hint="--district")
    if city:
        from gis_service.demo.city import check_divisions, load_city

        try:
            check_divisions(district or [])
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--district") from exc

        with steps("city") as step:
            city_result = load_city(
                settings,
                seed=seed,
                cases_total=cases,
                years=years,
                only=district or None,
                progress=step,
            )
        console.print(f"[green]{city_result.summary()}[/]")
        return
    with steps("demo") as step:
        result = load_demo(settings, seed=seed, progress=step)
    console.print(f"[green]{result.summary()}[/]")
    # walking distances and quarter-hour circles, so the first map opens at once
    from gis_service.cli.access import compute

    compute()
