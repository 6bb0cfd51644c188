"""Service-point import: GeoJSON or CSV lon/lat, one kind per file, one transaction.

A re-import updates rather than duplicates: points are matched on the file's id field, or
without one on kind + name + position rounded to about a metre.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, text

from gis_service.db.engine import transaction
from gis_service.errors import ImportRejected
from gis_service.geo.bounds import GeometryLimits
from gis_service.geo.coords import CoordSys
from gis_service.imports.fields import MAX_NAME_CHARS, MAX_TEXT_CHARS, Cells, pick_column
from gis_service.imports.problems import Problems
from gis_service.imports.readers import read_vector
from gis_service.imports.report import ImportReport, Progress, no_progress
from gis_service.settings import Settings, get_settings

NAME_NAMES = ("name", "名称", "名字")
ADDRESS_NAMES = ("address", "addr", "地址")
HOURS_NAMES = ("opening_hours", "hours", "开放时间", "营业时间")
PHONE_NAMES = ("phone", "tel", "contact", "电话", "联系电话")
CATEGORY_NAMES = ("categories", "category", "类别", "服务类别")
ID_NAMES = ("id", "external_id", "编号")
DUPLICATE_M = 5.0


@dataclass
class PointOptions:
    kind: str
    name_field: str | None = None
    address_field: str | None = None
    hours_field: str | None = None
    phone_field: str | None = None
    categories_field: str | None = None
    id_field: str | None = None
    crs: str | None = None
    coord_sys: CoordSys = CoordSys.wgs84
    lon_field: str | None = None
    lat_field: str | None = None
    dry_run: bool = False

    def as_params(self) -> dict[str, Any]:
        return {k: (v.value if hasattr(v, "value") else v) for k, v in self.__dict__.items()}


def _vocabulary(conn: Connection, kind: str) -> tuple[list[str], dict[str, str]]:
    row = conn.execute(
        text("SELECT default_categories FROM service_kind WHERE code = :k"), {"k": kind}
    ).first()
    if row is None:
        known = conn.execute(text("SELECT string_agg(code, ', ' ORDER BY code) FROM service_kind"))
        raise ImportRejected(f"unknown kind {kind!r}; known kinds: {known.scalar()}")
    names: dict[str, str] = {}
    for code, zh, en in conn.execute(text("SELECT code, name_zh, name_en FROM living_category")):
        for label in (code, zh, zh.removesuffix("服务"), en.lower()):
            names[label.lower()] = code
    return list(row[0]), names


def _categories(
    raw: str | None, default: list[str], vocab: dict[str, str], seq: int, problems: Problems
) -> list[str]:
    if not raw:
        return default
    out: list[str] = []
    for part in raw.replace("；", ";").replace("，", ",").replace(";", ",").split(","):
        label = part.strip().lower()
        if not label:
            continue
        if label not in vocab:
            problems.add(
                seq, f"unknown category {part.strip()!r}; use one of {sorted(set(vocab.values()))}"
            )
            continue
        if vocab[label] not in out:
            out.append(vocab[label])
    return out or default


def import_points(
    path: Path | str,
    options: PointOptions,
    *,
    settings: Settings | None = None,
    progress: Progress = no_progress,
    import_id: str | None = None,
) -> ImportReport:
    path = Path(path)
    settings = settings or get_settings()
    progress("reading")
    read = read_vector(
        path,
        crs=options.crs,
        coord_sys=options.coord_sys,
        lon_field=options.lon_field,
        lat_field=options.lat_field,
        limits=GeometryLimits.of(settings),
    )
    return import_points_frame(
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


def import_points_frame(
    frame,
    options: PointOptions,
    *,
    filename: str,
    settings: Settings | None = None,
    progress: Progress = no_progress,
    import_id: str | None = None,
    source_crs: str | None = "EPSG:4326",
    encoding: str | None = None,
    notes: list[str] | None = None,
) -> ImportReport:
    settings = settings or get_settings()
    report = ImportReport(
        kind=f"points:{options.kind}",
        file=filename,
        source_crs=source_crs,
        encoding=encoding,
        notes=list(notes or []),
        features=len(frame),
        dry_run=options.dry_run,
    )
    if frame.empty:
        raise ImportRejected(f"{filename}: no features")
    cols = [c for c in frame.columns if c != frame.geometry.name]
    col = {
        "name": pick_column(cols, options.name_field, NAME_NAMES, "name"),
        "address": pick_column(cols, options.address_field, ADDRESS_NAMES, "address"),
        "hours": pick_column(cols, options.hours_field, HOURS_NAMES, "opening hours"),
        "phone": pick_column(cols, options.phone_field, PHONE_NAMES, "phone"),
        "categories": pick_column(cols, options.categories_field, CATEGORY_NAMES, "categories"),
        "id": pick_column(cols, options.id_field, ID_NAMES, "id"),
    }
    if col["name"] is None:
        raise ImportRejected(f"no name field: pass --name-field (fields in the file: {cols})")
    problems = Problems()
    with transaction(settings) as conn:
        default, vocab = _vocabulary(conn, options.kind)
        progress("checking features")
        rows = []
        for seq, (_, row) in enumerate(frame.iterrows(), start=1):
            cells = Cells(seq, problems)
            cells.label = {"name": cells.label_text(row[col["name"]])}

            def val(key: str, row=row, cells=cells, max_chars=MAX_TEXT_CHARS) -> str | None:
                column = col[key]
                return cells.text(column, row[column] if column else None, max_chars)

            name = val("name", max_chars=MAX_NAME_CHARS)
            fields = {key: val(key) for key in ("address", "hours", "phone", "categories")}
            fields["id"] = val("id", max_chars=MAX_NAME_CHARS)
            geom = row[frame.geometry.name]
            if geom is not None and geom.geom_type == "MultiPoint" and len(geom.geoms) == 1:
                geom = geom.geoms[0]
            if geom is None or geom.is_empty or geom.geom_type != "Point":
                kind = "no geometry" if geom is None or geom.is_empty else geom.geom_type
                problems.add(seq, f"has {kind}; service points are points", **cells.label)
                continue
            if not name and col["name"] not in cells.bad:
                problems.add(seq, "has no name")
            if cells.bad or not name:
                continue
            ext = fields["id"] or f"{options.kind}:{name}:{geom.x:.5f},{geom.y:.5f}"
            rows.append(
                {
                    "seq": seq,
                    "external_id": ext,
                    "name": name,
                    "address": fields["address"],
                    "hours": fields["hours"],
                    "phone": fields["phone"],
                    "cats": _categories(fields["categories"], default, vocab, seq, problems),
                    "lon": geom.x,
                    "lat": geom.y,
                }
            )
        problems.raise_if_any(filename)
        progress("staging")
        conn.exec_driver_sql(
            """
            CREATE TEMP TABLE point_stage (
                seq integer PRIMARY KEY, external_id text NOT NULL, name text NOT NULL,
                address text, hours text, phone text, cats text[] NOT NULL,
                geom geometry(Point, 4326) NOT NULL, unit_code text) ON COMMIT DROP
            """
        )
        conn.execute(
            text(
                """
                INSERT INTO point_stage (seq, external_id, name, address, hours, phone, cats, geom)
                VALUES (:seq, :external_id, :name, :address, :hours, :phone, :cats,
                        ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))
                """
            ),
            rows,
        )
        dup_ids = conn.execute(
            text(
                "SELECT external_id, array_agg(seq ORDER BY seq) FROM point_stage "
                "GROUP BY external_id HAVING count(*) > 1"
            )
        ).all()
        for ext, seqs in dup_ids:
            problems.add(seqs[1], f"same id {ext!r} as feature {seqs[0]}")
        problems.raise_if_any(filename)
        # the duplicate search below walks the index (a box of DUPLICATE_M around each
        # point, then the geodesic distance): without it, n points cost n² distances
        # (20,000 points took minutes)
        conn.exec_driver_sql("CREATE INDEX ON point_stage USING gist (geom)")
        conn.exec_driver_sql("ANALYZE point_stage")
        progress("locating")
        conn.exec_driver_sql(
            """
            UPDATE point_stage s
               SET unit_code = (SELECT u.code FROM admin_unit u
                                 WHERE u.geom && s.geom AND ST_Intersects(u.geom, s.geom)
                                 ORDER BY length(u.code) DESC LIMIT 1)
            """
        )
        report.unlocated = [
            dict(r._mapping)
            for r in conn.execute(
                text(
                    "SELECT seq AS feature, name, ST_X(geom) AS lon, ST_Y(geom) AS lat "
                    "FROM point_stage WHERE unit_code IS NULL ORDER BY seq"
                )
            )
        ]
        report.duplicates = [
            dict(r._mapping)
            for r in conn.execute(
                text(
                    """
            SELECT a.seq AS feature, a.name, b.name AS other_name, b.external_id AS other_id,
                   round(ST_Distance(a.geom::geography, b.geom::geography)::numeric, 1)::float
                       AS distance_m
              FROM point_stage a
              CROSS JOIN LATERAL (SELECT ST_Expand(a.geom,
                  :d / 111000.0 / greatest(cos(radians(ST_Y(a.geom))), 0.01),
                  :d / 110000.0) AS near) w
              JOIN LATERAL (
                  SELECT p.name, p.external_id, p.geom FROM service_point p
                   WHERE p.kind = :kind AND p.external_id <> a.external_id
                     AND p.geom && w.near
                     AND ST_DWithin(p.geom::geography, a.geom::geography, :d)
                  UNION ALL
                  SELECT t.name, t.external_id, t.geom FROM point_stage t
                   WHERE t.seq < a.seq AND t.geom && w.near
                     AND ST_DWithin(t.geom::geography, a.geom::geography, :d)
              ) b ON true
             ORDER BY a.seq
            """
                ),
                {"kind": options.kind, "d": DUPLICATE_M},
            )
        ]
        progress("writing")
        result = conn.execute(
            text(
                """
                INSERT INTO service_point AS p (external_id, kind, categories, name, address,
                            opening_hours, phone, unit_code, geom, import_id, updated_at)
                SELECT external_id, :kind, cats, name, address, hours, phone, unit_code, geom,
                       CAST(:import_id AS uuid), now()
                  FROM point_stage ORDER BY seq
                ON CONFLICT (external_id) DO UPDATE
                   SET kind = EXCLUDED.kind, categories = EXCLUDED.categories,
                       name = EXCLUDED.name, address = EXCLUDED.address,
                       opening_hours = EXCLUDED.opening_hours, phone = EXCLUDED.phone,
                       unit_code = EXCLUDED.unit_code, geom = EXCLUDED.geom,
                       import_id = EXCLUDED.import_id, updated_at = now()
                RETURNING (xmax = 0) AS inserted
                """
            ),
            {"kind": options.kind, "import_id": import_id},
        ).all()
        report.inserted = sum(1 for r in result if r.inserted)
        report.updated = len(result) - report.inserted
        if options.dry_run:
            conn.rollback()
    return report
