"""``gis-service open311``: keys for Open311 client apps (filled in by the Open311 work)."""

from __future__ import annotations

import typer

app = typer.Typer(help="Open311 GeoReport v2: client keys.", no_args_is_help=True)
