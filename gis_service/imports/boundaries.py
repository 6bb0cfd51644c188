"""Boundary import: read → check and repair each feature → stage → QA in SQL → upsert.

Everything between staging and upsert runs in one transaction, so a fatal problem (a
duplicate or malformed code, an unknown parent, a feature nowhere near its parent) leaves
nothing behind. Repairs and suspicious geometry are warnings in the QA report.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import shapely
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection

from gis_service.db.engine import transaction
from gis_service.errors import ImportRejected
from gis_service.geo.bounds import GeometryLimits
from gis_service.geo.coords import CoordSys
from gis_service.imports import qa
from gis_service.imports.fields import MAX_NAME_CHARS, CellError, Cells, pick_column, text_value
from gis_service.imports.problems import Problems
from gis_service.imports.readers import read_vector
from gis_service.imports.report import ImportReport, Progress, no_progress
from gis_service.settings import Settings, get_settings
from gis_service.units import codes
from gis_service.units.codes import Level

CODE_NAMES = ("code", "adcode", "unit_code", "编码", "代码", "区划代码")
NAME_NAMES = ("name", "unit_name", "名称", "名字")
PARENT_NAMES = ("parent_code", "parent", "上级编码", "上级代码")
POPULATION_NAMES = ("population", "pop", "人口")
HOUSEHOLD_NAMES = ("households", "户数")


@dataclass
class BoundaryOptions:
    level: Level
    code_field: str | None = None
    name_field: str | None = None
    parent_field: str | None = None
    parent: str | None = None
    population_field: str | None = None
    households_field: str | None = None
    crs: str | None = None
    coord_sys: CoordSys = CoordSys.wgs84
    layer: str | None = None
    encoding: str | None = None
    wkt_field: str | None = None
    dry_run: bool = False

    def as_params(self) -> dict[str, Any]:
        return {k: (v.value if hasattr(v, "value") else v) for k, v in self.__dict__.items()}


@dataclass
class StagedUnit:
    seq: int
    name: str
    geom: MultiPolygon
    code: str | None = None
    parent_code: str | None = None
    population: int | None = None
    households: int | None = None
    attrs: dict[str, Any] = field(default_factory=dict)


def _polygonal(geom: BaseGeometry) -> MultiPolygon:
    """The polygons of a geometry (make_valid may return a collection with stray lines)."""
    if isinstance(geom, Polygon):
        return MultiPolygon([geom])
    if isinstance(geom, MultiPolygon):
        return geom
    parts = [g for g in getattr(geom, "geoms", []) if isinstance(g, Polygon | MultiPolygon)]
    polys: list[Polygon] = []
    for part in parts:
        polys.extend(part.geoms if isinstance(part, MultiPolygon) else [part])
    return MultiPolygon(polys)


def repair(geom: BaseGeometry) -> tuple[MultiPolygon, str | None]:
    """Return a valid MultiPolygon and the GEOS reason it was invalid (None if it was valid).

    ``method="structure"`` rebuilds areas from the rings (outer rings unioned, holes
    subtracted) rather than keeping every self-intersection's loop as its own piece, which
    is what a quantised outline means.
    """
    if geom.is_valid:
        return _polygonal(geom), None
    reason = shapely.is_valid_reason(geom)
    fixed = shapely.make_valid(geom, method="structure", keep_collapsed=False)
    return _polygonal(fixed), reason


def prepare(
    frame, options: BoundaryOptions, problems: Problems, report: ImportReport
) -> list[StagedUnit]:
    """Check and repair each feature in Python; SQL checks come after staging."""
    columns = [c for c in frame.columns if c != frame.geometry.name]
    code_col = pick_column(columns, options.code_field, CODE_NAMES, "code")
    name_col = pick_column(columns, options.name_field, NAME_NAMES, "name")
    parent_col = pick_column(columns, options.parent_field, PARENT_NAMES, "parent code")
    pop_col = pick_column(columns, options.population_field, POPULATION_NAMES, "population")
    hh_col = pick_column(columns, options.households_field, HOUSEHOLD_NAMES, "households")
    if name_col is None:
        raise ImportRejected(f"no name field: pass --name-field (fields in the file: {columns})")
    if options.level is Level.district and code_col is None:
        raise ImportRejected("districts need their national division code: pass --code-field")
    used = {c for c in (code_col, name_col, parent_col, pop_col, hh_col) if c}
    extra = [c for c in columns if c not in used]
    for c in extra:
        try:
            text_value(str(c), MAX_NAME_CHARS)
        except CellError as exc:
            problems.add(None, f"field name {exc}", field=str(c))
    seen: dict[str, int] = {}
    units: list[StagedUnit] = []
    for seq, (_, row) in enumerate(frame.iterrows(), start=1):
        geom = row[frame.geometry.name]
        cells = Cells(seq, problems)
        cells.label = {
            "code": cells.label_text(row[code_col]) if code_col else None,
            "name": cells.label_text(row[name_col]),
        }
        label = cells.label
        name = cells.text(name_col, row[name_col], MAX_NAME_CHARS)
        code = cells.text(code_col, row[code_col] if code_col else None)
        parent = cells.text(parent_col, row[parent_col]) if parent_col else options.parent
        population = cells.count(pop_col, row[pop_col] if pop_col else None)
        households = cells.count(hh_col, row[hh_col] if hh_col else None)
        attrs = {c: cells.text(c, row[c]) for c in extra}
        if geom is None or geom.is_empty:
            problems.add(seq, "has no geometry", **label)
            continue
        if geom.geom_type not in ("Polygon", "MultiPolygon", "GeometryCollection"):
            problems.add(
                seq, f"is a {geom.geom_type}; {options.level.value} units are polygons", **label
            )
            continue
        if not name and name_col not in cells.bad:
            problems.add(seq, "has no name", **label)
        fixed, reason = repair(geom)
        if fixed.is_empty:
            problems.add(seq, f"has no area left after repair ({reason})", **label)
            continue
        if reason:
            report.repaired.append(
                {
                    "feature": seq,
                    **label,
                    "reason": reason,
                    "parts_after": len(fixed.geoms),
                    "vertices": int(shapely.get_num_coordinates(geom)),
                }
            )
        if code is not None:
            try:
                codes.validate(code, options.level)
            except codes.CodeError as exc:
                problems.add(seq, f"malformed code: {exc}", **label)
                code = None
            else:
                if code in seen:
                    problems.add(seq, f"duplicate code {code} (also feature {seen[code]})", **label)
                seen.setdefault(code, seq)
        elif code_col and code_col not in cells.bad:
            problems.add(seq, f"has no code in field {code_col!r}", **label)
        if code and parent and not code.startswith(parent):
            problems.add(
                seq, f"code {code} does not start with its parent's code {parent}", **label
            )
        if code and not parent and options.level is not Level.district:
            parent = codes.parent_of(code)
        if cells.bad:
            continue
        units.append(
            StagedUnit(
                seq=seq,
                name=name or "",
                geom=fixed,
                code=code,
                parent_code=parent,
                population=population,
                households=households,
                attrs={k: v for k, v in attrs.items() if v is not None},
            )
        )
    return units


def import_boundaries(
    path: Path | str,
    options: BoundaryOptions,
    *,
    settings: Settings | None = None,
    progress: Progress = no_progress,
    import_id: str | None = None,
) -> ImportReport:
    """Import one level of boundaries from a file; returns the QA report or raises."""
    path = Path(path)
    settings = settings or get_settings()
    progress("reading")
    read = read_vector(
        path,
        crs=options.crs,
        coord_sys=options.coord_sys,
        layer=options.layer,
        encoding=options.encoding,
        wkt_field=options.wkt_field,
        limits=GeometryLimits.of(settings),
    )
    return import_frame(
        read.frame,
        options,
        filename=path.name,
        settings=settings,
        progress=progress,
        import_id=import_id,
        source_crs=read.source_crs,
        encoding=read.encoding,
        notes=read.notes,
    )


def import_frame(
    frame,
    options: BoundaryOptions,
    *,
    filename: str,
    settings: Settings | None = None,
    progress: Progress = no_progress,
    import_id: str | None = None,
    source_crs: str | None = "EPSG:4326",
    encoding: str | None = None,
    notes: list[str] | None = None,
) -> ImportReport:
    """Import a GeoDataFrame already in EPSG:4326 (the demo generator uses this directly)."""
    settings = settings or get_settings()
    report = ImportReport(
        kind="boundaries",
        file=filename,
        level=options.level.value,
        source_crs=source_crs,
        encoding=encoding,
        notes=list(notes or []),
        features=len(frame),
        dry_run=options.dry_run,
    )
    if frame.empty:
        raise ImportRejected(f"{filename}: no features")
    problems = Problems()
    progress("checking features")
    units = prepare(frame, options, problems, report)
    problems.raise_if_any(filename)
    with transaction(settings) as conn:
        progress("staging")
        _stage(conn, units)
        progress("resolving parents and codes")
        qa.resolve_parents(conn, options.level, problems, report)
        problems.raise_if_any(filename)
        qa.assign_codes(conn, options.level, report)
        qa.check_disjoint(conn, problems)
        problems.raise_if_any(filename)
        progress("checking geometry against parents and siblings")
        tol = settings.qa_area_tolerance_m2
        report.outside_parent = qa.outside_parent(conn, tol)
        report.overlaps = qa.sibling_overlaps(conn, options.level, tol)
        if options.level not in (Level.district, Level.building):
            report.gaps = qa.parent_gaps(conn, options.level, tol)
        progress("writing")
        report.inserted, report.updated = qa.upsert_units(conn, options.level, import_id)
        qa.relocate_service_points(conn)
        if options.dry_run:
            conn.rollback()
    return report


def _stage(conn: Connection, units: list[StagedUnit]) -> None:
    conn.exec_driver_sql(qa.CREATE_STAGE)
    rows = [
        {
            "seq": u.seq,
            "code": u.code,
            "name": u.name,
            "parent_code": u.parent_code,
            "wkb": shapely.to_wkb(u.geom, hex=True, include_srid=False),
            "population": u.population,
            "households": u.households,
            "attrs": json.dumps(u.attrs, ensure_ascii=False),
        }
        for u in units
    ]
    conn.execute(qa.INSERT_STAGE, rows)
