"""``gis-service import``: boundaries, service points and rosters, each one transaction."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from gis_service.cli.progress import steps
from gis_service.cli.report import print_report
from gis_service.db import cluster
from gis_service.geo.coords import CoordSys
from gis_service.imports.boundaries import BoundaryOptions, import_boundaries
from gis_service.imports.points import PointOptions, import_points
from gis_service.imports.roster import read_roster, replace_roster
from gis_service.settings import get_settings
from gis_service.units.codes import Level

app = typer.Typer(help="Import boundaries, service points and rosters.", no_args_is_help=True)
console = Console(stderr=True)


@app.command()
def boundaries(
    file: Path = typer.Argument(..., help="GeoJSON, GeoPackage, Shapefile or CSV with WKT."),
    level: Level = typer.Option(..., help="Level of every feature in the file."),
    code_field: str = typer.Option(None, help="Field with the unit code (auto: code, 编码…)."),
    name_field: str = typer.Option(None, help="Field with the name (auto: name, 名称…)."),
    parent_field: str = typer.Option(None, help="Field with the parent's code."),
    parent: str = typer.Option(None, help="Parent code for every feature."),
    population_field: str = typer.Option(None),
    households_field: str = typer.Option(None),
    crs: str = typer.Option(None, help="Source CRS, e.g. EPSG:4547 (overrides the file's)."),
    coord_sys: CoordSys = typer.Option(CoordSys.wgs84, help="Datum of lon/lat coordinates."),
    layer: str = typer.Option(None, help="Layer of a GeoPackage."),
    encoding: str = typer.Option(None, help="Text encoding of a .dbf (auto-detected)."),
    wkt_field: str = typer.Option(None, help="CSV column with WKT geometry."),
    dry_run: bool = typer.Option(False, help="Check and report, write nothing."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Import one level of boundaries and print the QA report."""
    settings = get_settings()
    cluster.start(settings)
    options = BoundaryOptions(
        level=level,
        code_field=code_field,
        name_field=name_field,
        parent_field=parent_field,
        parent=parent,
        population_field=population_field,
        households_field=households_field,
        crs=crs,
        coord_sys=coord_sys,
        layer=layer,
        encoding=encoding,
        wkt_field=wkt_field,
        dry_run=dry_run,
    )
    with steps(f"import {file.name}") as step:
        report = import_boundaries(file, options, settings=settings, progress=step)
    print_report(report, console, as_json)


@app.command()
def points(
    file: Path = typer.Argument(..., help="GeoJSON or CSV with lon/lat (or WKT) columns."),
    kind: str = typer.Option(..., help="Kind of service point, e.g. red_home."),
    name_field: str = typer.Option(None),
    categories_field: str = typer.Option(None, help="Comma-separated living-circle categories."),
    id_field: str = typer.Option(None, help="Stable id of each point, for re-imports."),
    lon_field: str = typer.Option(None),
    lat_field: str = typer.Option(None),
    crs: str = typer.Option(None),
    coord_sys: CoordSys = typer.Option(CoordSys.wgs84),
    dry_run: bool = typer.Option(False),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Import service points of one kind."""
    settings = get_settings()
    cluster.start(settings)
    options = PointOptions(
        kind=kind,
        name_field=name_field,
        categories_field=categories_field,
        id_field=id_field,
        lon_field=lon_field,
        lat_field=lat_field,
        crs=crs,
        coord_sys=coord_sys,
        dry_run=dry_run,
    )
    with steps(f"import {file.name}") as step:
        report = import_points(file, options, settings=settings, progress=step)
    print_report(report, console, as_json)


@app.command()
def roster(
    file: Path = typer.Argument(..., help="CSV: unit_code, role, name, phone, sort."),
) -> None:
    """Replace the roster of every unit the file names."""
    settings = get_settings()
    cluster.start(settings)
    report = replace_roster(read_roster(file), filename=file.name, settings=settings)
    console.print(f"[green]{report.inserted} roster entries for {file.name}[/]")


def _bbox(text: str | None) -> tuple[float, float, float, float] | None:
    if text is None:
        return None
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 4 or not (values[0] < values[2] and values[1] < values[3]):
        raise typer.BadParameter("--bbox takes minlon,minlat,maxlon,maxlat (min < max)")
    return values  # type: ignore[return-value]


@app.command()
def network(
    file: Path = typer.Argument(
        ..., help="OSM extract (.osm.pbf, .osm) or a line layer (GeoJSON, GeoPackage, Shapefile)."
    ),
    bbox: str = typer.Option(None, help="minlon,minlat,maxlon,maxlat: keep streets inside."),
    keep_all: bool = typer.Option(
        False, help="Keep disconnected islands (default: the largest connected network only)."
    ),
    crs: str = typer.Option(None, help="Source CRS of a line layer, e.g. EPSG:4547."),
    coord_sys: CoordSys = typer.Option(CoordSys.wgs84, help="Datum of lon/lat coordinates."),
    layer: str = typer.Option(None, help="Layer of a GeoPackage."),
) -> None:
    """Replace the walking network (one transaction) and print a one-line summary."""
    from gis_service.network.imports import import_network

    settings = get_settings()
    cluster.start(settings)
    with steps(f"import {file.name}") as step:
        done = import_network(
            file,
            settings=settings,
            progress=step,
            bbox=_bbox(bbox),
            keep_all=keep_all,
            crs=crs,
            coord_sys=coord_sys,
            layer=layer,
        )
    console.print(f"[green]{done.summary()}[/]")
