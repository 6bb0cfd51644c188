"""A generated city-scale test bed for the access benchmark: ≥ 1 M street edges and
≥ 100,000 buildings, written once into its own database (gis_service_bench_city).

A 710 × 710 lattice of streets 50 m apart (1,006,580 edges, 35 km square) with nodes
jittered by up to 10 m, a canal crossed only every 2 km, one district of 10 subdistricts
× 10 communities × 10 grids × 100 buildings (20 m squares, 20–400 residents each), and
2,000 party organisations plus 6,000 other service points at random street corners.
"""

from __future__ import annotations

import io
import sys
import time

import numpy as np
import shapely
from pyproj import Transformer
from sqlalchemy import text

from gis_service.db import cluster, migrate
from gis_service.db.engine import get_engine, transaction
from gis_service.network.store import Network, write_network
from gis_service.settings import Settings

DB = "gis_service_bench_city"
SIDE = 710
SPACING = 50.0
ORIGIN = (700_000.0, 3_830_000.0)  # UTM 49N, near Zhengzhou
CODE = "419901"
KINDS = [
    ("party_org", "{government}", 2000),
    ("convenience_outlet", "{daily_life}", 2000),
    ("community_center", "{government,culture_education,daily_life}", 1000),
    ("health_station", "{health}", 1000),
    ("volunteer_studio", "{public_welfare}", 1000),
    ("police_post", "{safety}", 1000),
]

to_wgs = Transformer.from_crs(32649, 4326, always_xy=True)


def _lonlat(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lon, lat = to_wgs.transform(x, y)
    return np.asarray(lon), np.asarray(lat)


def network(rng: np.random.Generator) -> tuple[Network, np.ndarray, np.ndarray]:
    i, j = np.meshgrid(np.arange(SIDE), np.arange(SIDE), indexing="ij")
    x = ORIGIN[0] + i * SPACING + rng.uniform(-10, 10, i.shape)
    y = ORIGIN[1] + j * SPACING + rng.uniform(-10, 10, i.shape)
    ids = (i * SIDE + j + 1).ravel()
    src = np.concatenate(
        [(i[:-1, :] * SIDE + j[:-1, :] + 1).ravel(), (i[:, :-1] * SIDE + j[:, :-1] + 1).ravel()]
    )
    dst = np.concatenate(
        [(i[1:, :] * SIDE + j[1:, :] + 1).ravel(), (i[:, 1:] * SIDE + j[:, 1:] + 1).ravel()]
    )
    # the canal runs east-west between rows 350 and 351; bridges every 40th column
    col = (src - 1) // SIDE
    row_a, row_b = (src - 1) % SIDE, (dst - 1) % SIDE
    crossing = (row_a == 350) & (row_b == 351) & (col % 40 != 0)
    src, dst = src[~crossing], dst[~crossing]
    lon, lat = _lonlat(x.ravel(), y.ravel())
    a, b = src - 1, dst - 1
    lines = shapely.linestrings(
        np.stack([np.column_stack([lon[a], lat[a]]), np.column_stack([lon[b], lat[b]])], axis=1)
    )
    kind = ["residential"] * len(src)
    net = Network(
        node_id=ids.astype(np.int64),
        node_lon=lon,
        node_lat=lat,
        source=src.astype(np.int64),
        target=dst.astype(np.int64),
        lines=lines,
        kind=kind,
        name=[None] * len(src),
    )
    return net, x.ravel(), y.ravel()


def _box(x0: float, y0: float, x1: float, y1: float) -> str:
    lon, lat = _lonlat(np.array([x0, x1, x1, x0, x0]), np.array([y0, y0, y1, y1, y0]))
    ring = ",".join(f"{a:.8f} {b:.8f}" for a, b in zip(lon, lat, strict=True))
    return f"SRID=4326;MULTIPOLYGON((({ring})))"


def units(rng: np.random.Generator) -> tuple[io.StringIO, int]:
    size = SIDE * SPACING
    buf = io.StringIO()
    rows = 0

    def row(
        code: str, level: str, name: str, parent: str | None, geom: str, pop: int | None
    ) -> None:
        nonlocal rows
        buf.write(
            f"{code}\t{level}\t{name}\t{parent or chr(92) + 'N'}\t{geom}\t"
            f"{chr(92) + 'N' if pop is None else pop}\n"
        )
        rows += 1

    x0, y0 = ORIGIN
    row(CODE, "district", "基准市区", None, _box(x0, y0, x0 + size, y0 + size), None)
    step_s, step_c, step_g = size / 10, size / 10, size / 100
    for s in range(10):
        sx0 = x0 + s * step_s
        s_code = f"{CODE}{s + 1:03d}"
        row(
            s_code,
            "subdistrict",
            f"街道{s + 1}",
            CODE,
            _box(sx0, y0, sx0 + step_s, y0 + size),
            None,
        )
        for c in range(10):
            cy0 = y0 + c * step_c
            c_code = f"{s_code}{c + 1:03d}"
            row(
                c_code,
                "community",
                f"社区{s + 1}-{c + 1}",
                s_code,
                _box(sx0, cy0, sx0 + step_s, cy0 + step_c),
                None,
            )
            for g in range(10):
                gx0 = sx0 + g * step_g
                g_code = f"{c_code}{g + 1:02d}"
                row(
                    g_code,
                    "grid",
                    f"网格{g + 1}",
                    c_code,
                    _box(gx0, cy0, gx0 + step_g, cy0 + step_c),
                    None,
                )
                bx = rng.uniform(gx0 + 5, gx0 + step_g - 25, 100)
                by = rng.uniform(cy0 + 5, cy0 + step_c - 25, 100)
                pop = rng.integers(20, 400, 100)
                for b in range(100):
                    row(
                        f"{g_code}{b + 1:03d}",
                        "building",
                        f"{b + 1}号楼",
                        g_code,
                        _box(bx[b], by[b], bx[b] + 20, by[b] + 20),
                        int(pop[b]),
                    )
    buf.seek(0)
    return buf, rows


def points(rng: np.random.Generator, nx: np.ndarray, ny: np.ndarray) -> io.StringIO:
    buf = io.StringIO()
    n = 0
    for kind, cats, count in KINDS:
        pick = rng.choice(len(nx), count, replace=False)
        lon, lat = _lonlat(
            nx[pick] + rng.uniform(-15, 15, count), ny[pick] + rng.uniform(-15, 15, count)
        )
        for a, b in zip(lon, lat, strict=True):
            n += 1
            buf.write(f"city-{n}\t{kind}\t{cats}\t{kind}{n}\tSRID=4326;POINT({a:.8f} {b:.8f})\n")
    buf.seek(0)
    return buf


def ensure_city() -> Settings:
    settings = Settings(db_name=DB)
    cluster.start(settings)
    cluster.ensure_database(settings, DB)
    migrate.upgrade(settings)
    with get_engine(settings).connect() as conn:
        edges = conn.execute(text("SELECT count(*) FROM walk_edge")).scalar()
        buildings = conn.execute(
            text("SELECT count(*) FROM admin_unit WHERE level = 'building'")
        ).scalar()
    if edges >= 1_000_000 and buildings >= 100_000:
        return settings
    t0 = time.perf_counter()
    print("generating the city-scale test bed (once) …", file=sys.stderr)
    rng = np.random.default_rng(2026)
    net, nx, ny = network(rng)
    with transaction(settings) as conn:
        conn.execute(text("TRUNCATE admin_unit, service_point CASCADE"))
        write_network(conn, net)
        buf, _ = units(rng)
        raw = conn.connection.dbapi_connection
        with raw.cursor() as cur:
            cur.execute("SET CONSTRAINTS ALL DEFERRED")
            cur.copy_expert(
                "COPY admin_unit (code, level, name, parent_code, geom, population) FROM STDIN", buf
            )
            cur.copy_expert(
                "COPY service_point (external_id, kind, categories, name, geom) FROM STDIN",
                points(rng, nx, ny),
            )
        conn.execute(text("ANALYZE admin_unit"))
    print(
        f"  {net.edge_count:,} edges written in {time.perf_counter() - t0:.0f} s", file=sys.stderr
    )
    return settings


if __name__ == "__main__":
    ensure_city()
