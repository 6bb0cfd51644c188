"""``gis-service notify run``: the notification sender (gis_service/notify/sender.py)."""

from __future__ import annotations

import signal
import threading

import typer
from rich.console import Console

from gis_service.db import cluster
from gis_service.notify.sender import Sender, Totals
from gis_service.settings import get_settings

app = typer.Typer(help="Notifications: the sender of the outbox.", no_args_is_help=True)
console = Console(stderr=True)


@app.command("run")
def run(
    once: bool = typer.Option(False, "--once", help="One loop, then exit (cron, tests)."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress lines, only the summary."),
) -> None:
    """Fan the outbox out, queue deadline reminders and deliver, until SIGINT/SIGTERM.

    Prints a progress line after each loop that found work and a one-line summary at the
    end. Several senders may run at once (rows are claimed with FOR UPDATE SKIP LOCKED)."""
    settings = get_settings()
    cluster.start(settings)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    sender = Sender(settings)
    console.print(f"notify: sender {sender.name} running (Ctrl-C stops)")

    def report(t: Totals) -> None:
        if not quiet:
            console.print(
                f"notify: {t.events:,} events, {t.notifications:,} notifications, "
                f"{t.reminders:,} reminders, {t.sent:,} sent, {t.retried:,} retrying, "
                f"{t.dead:,} dead"
            )

    totals = sender.run(stop, once=once, report=report)
    console.print(f"[green]notify: {totals.summary()}[/]")
