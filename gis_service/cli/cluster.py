"""``gis-service cluster``: the replicated cluster (etcd + Patroni; db/patroni.py)."""

from __future__ import annotations

import time

import typer
from rich.console import Console
from rich.table import Table

from gis_service.db import patroni
from gis_service.settings import get_settings

app = typer.Typer(
    help="A Patroni-managed PostgreSQL cluster with streaming replicas on 127.0.0.1.",
    no_args_is_help=True,
)
console = Console(stderr=True)


@app.command()
def up(
    replicas: int = typer.Option(1, "--replicas", min=0, help="Standbys beside the primary."),
    shared_buffers: str = typer.Option(
        None, "--shared-buffers", help="Per node (default: the single cluster's 512MB)."
    ),
) -> None:
    """Start etcd and replicas + 1 PostgreSQL nodes under Patroni, one standby synchronous;
    create and migrate the database on the primary. Prints the two connection strings
    (writes, reads) as GIS_DATABASE_URL / GIS_READ_DATABASE_URL lines; they are also kept
    in var_dir/cluster/env."""
    settings = get_settings()
    started = time.monotonic()
    lay, members = patroni.up(settings, replicas, shared_buffers)
    env = f"GIS_DATABASE_URL={lay.write_dsn}\nGIS_READ_DATABASE_URL={lay.read_dsn}\n"
    (lay.root / "env").write_text(env)
    console.print(
        f"[green]cluster up[/] ({len(members)} nodes, {time.monotonic() - started:.1f} s; "
        f"files in {lay.root})"
    )
    _print_members(lay, members)
    print(env, end="")


@app.command()
def status() -> None:
    """The members as Patroni's REST API lists them: role, state, lag, port. Exits 3 when
    no node answers."""
    lay = patroni._known_layout(get_settings())
    members = patroni.members(lay)
    if not members:
        running = patroni.running_processes(get_settings())
        console.print(f"[red]no Patroni node answers[/] (running: {', '.join(running) or '-'})")
        raise typer.Exit(3)
    _print_members(lay, members)


@app.command()
def down() -> None:
    """Stop every node and etcd (their data stays); leaves no process running."""
    settings = get_settings()
    patroni.down(settings)
    left = patroni.running_processes(settings)
    if left:
        console.print(f"[red]still running:[/] {', '.join(left)}")
        raise typer.Exit(1)
    console.print("cluster stopped")


@app.command()
def switchover(
    candidate: str = typer.Option(
        None, "--candidate", help="The node to promote (default: the synchronous standby)."
    ),
) -> None:
    """Hand the primary role to a standby (Patroni's POST /switchover) and wait until the
    cluster is healthy again; prints how long it took."""
    lay = patroni._known_layout(get_settings())
    started = time.monotonic()
    new = patroni.switchover(lay, candidate)
    console.print(f"[green]{new['name']} is the leader[/] ({time.monotonic() - started:.1f} s)")
    _print_members(lay, patroni.members(lay))


def _print_members(lay: patroni.Layout, members: list[dict]) -> None:
    table = Table(title=f"cluster {patroni.SCOPE} (etcd 127.0.0.1:{lay.etcd_client_port})")
    for column in ("member", "role", "state", "lag (bytes)", "port", "REST", "timeline"):
        table.add_column(column)
    rest = {n.name: n.rest_port for n in lay.nodes}
    for m in sorted(members, key=lambda m: m.get("name", "")):
        lag = m.get("lag", "")
        table.add_row(
            m.get("name", "?"),
            m.get("role", "?"),
            m.get("state", "?"),
            "" if m.get("role") == "leader" else str(lag),
            str(m.get("port", "")),
            str(rest.get(m.get("name"), "")),
            str(m.get("timeline", "")),
        )
    listed = {m.get("name") for m in members}
    for node in lay.nodes:
        if node.name not in listed:  # its Patroni is gone: not in the DCS any more
            table.add_row(node.name, "-", "not running", "", str(node.pg_port), "", "")
    Console().print(table)
