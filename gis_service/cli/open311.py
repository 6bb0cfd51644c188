"""``gis-service open311``: keys for Open311 client apps."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from gis_service.cli.session import database
from gis_service.open311 import keys as keys_service
from gis_service.settings import get_settings
from gis_service.timezone import local_text

app = typer.Typer(help="Open311 GeoReport v2: client keys.", no_args_is_help=True)
keys_app = typer.Typer(help="api_keys of client apps: create, list, revoke.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
console = Console()


@keys_app.command("create")
def create(
    name: str = typer.Option(..., help="The client app, e.g. 12345-hotline."),
    scope: str = typer.Option(
        None, help="Unit code the key may report and read in (default: the whole coverage)."
    ),
) -> None:
    """Make a key for a client app and print it once."""
    with database() as conn:
        client, key = keys_service.create_key(conn, name, scope)
    where = f"unit {client['scope_code']}" if client["scope_code"] else "the whole coverage"
    console.print(f"created Open311 client {client['name']} (id {client['id']}, scope: {where})")
    typer.echo(f"api_key: {key}")
    console.print(
        "The key is stored hashed and cannot be shown again: give it to the "
        "client now (revoke and create a new one if it is lost)."
    )


@keys_app.command("list")
def list_keys() -> None:
    """Clients with the first characters of their key, scope and revocation."""
    with database() as conn:
        rows = keys_service.list_keys(conn)
    settings = get_settings()
    table = Table("id", "name", "key", "scope", "created", "revoked")
    for k in rows:
        scope = (
            f"{k['scope_code']} {k['scope_name'] or ''}".strip()
            if k["scope_code"]
            else "everything"
        )
        table.add_row(
            str(k["id"]),
            k["name"],
            f"{k['key_prefix']}…",
            scope,
            local_text(k["created_at"], settings),
            local_text(k["revoked_at"], settings) or "",
        )
    console.print(table)
    console.print(f"{len(rows)} clients")


@keys_app.command("revoke")
def revoke(name: str) -> None:
    """Revoke a client's key at once (its cases stay)."""
    with database() as conn:
        client = keys_service.revoke_key(conn, name)
    console.print(
        f"revoked the key of {client['name']} "
        f"(since {local_text(client['revoked_at'], get_settings())}); it no longer works"
    )
