"""``gis-service access``: compute walking distances and circles, site new services."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from gis_service.cli.progress import steps
from gis_service.db import cluster
from gis_service.db.engine import transaction
from gis_service.settings import get_settings

app = typer.Typer(
    help="Walking access: reach, living circles, service circles, siting.", no_args_is_help=True
)
console = Console(stderr=True)


@app.command()
def compute() -> None:
    """Recompute the walking distances of every building and the stale service circles."""
    from gis_service.access import circles, reach
    from gis_service.access.store import EngineCache

    settings = get_settings()
    cluster.start(settings)
    cache = EngineCache()
    with steps("access") as step:
        with transaction(settings) as conn:
            step("loading the walking network")
            engine = cache.get(conn)
            done = reach.compute(conn, engine, step)
        with transaction(settings) as conn:
            drawn = circles.refresh(conn, engine, step)
    console.print(f"[green]{done.summary()}; {drawn.summary()}[/]")


@app.command()
def siting(
    kind: str = typer.Option(None, help="Kind of service to site, e.g. party_org."),
    category: str = typer.Option(None, help="Or a living-circle category, e.g. health."),
    k: int = typer.Option(3, min=1, max=50, help="How many sites."),
    max_m: float = typer.Option(1000.0, help="Walking reach in metres."),
    candidates: Path = typer.Option(
        None, help="GeoJSON of candidate points (default: every node of the walking network)."
    ),
    out: Path = typer.Option(None, help="Write the sites as GeoJSON here."),
) -> None:
    """The k sites that bring the most uncovered residents within walking reach."""
    from gis_service.access import siting as siting_mod
    from gis_service.access.store import EngineCache
    from gis_service.errors import InvalidInput
    from gis_service.service_points.service import check_vocab

    settings = get_settings()
    cluster.start(settings)
    cands = None
    if candidates is not None:
        try:
            fc = json.loads(candidates.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InvalidInput(f"{candidates}: not a readable GeoJSON file ({exc})") from exc
        cands = siting_mod.candidates_from_geojson(fc)
    with steps("siting") as step, transaction(settings) as conn:
        check_vocab(conn, kind, category)
        step("loading the walking network")
        engine = EngineCache().get(conn)
        step("solving")
        result = siting_mod.site(
            conn, engine, kind=kind, category=category, k=k, max_m=max_m, candidates=cands
        )
    table = Table("rank", "site", "lon", "lat", "residents added", "buildings added")
    for f in result["features"]:
        p, (x, y) = f["properties"], f["geometry"]["coordinates"]
        table.add_row(
            str(p["rank"]),
            p["candidate"],
            f"{x:.6f}",
            f"{y:.6f}",
            f"{p['population_added']:,}",
            str(p["buildings_added"]),
        )
    Console().print(table)
    if out:
        out.write_text(json.dumps(result, ensure_ascii=False), encoding="utf-8")
    console.print(
        f"[green]{len(result['features'])} sites cover "
        f"{result['population_covered']:,} of {result['uncovered_population']:,} "
        f"uncovered residents ({result['uncovered_buildings']:,} buildings)[/]"
    )
