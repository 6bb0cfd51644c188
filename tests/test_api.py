"""The HTTP API on the real database: health, locate, units, service points, imports, docs."""

from __future__ import annotations

import io
import zipfile

import pytest
from shapely.geometry import box

from gis_service.geo import coords
from tests.conftest import ADMIN_AUTH, frame, make_user

AUTH = ADMIN_AUTH


def test_healthz_reports_database_and_postgis(client):
    body = client.get("/healthz").json()
    assert body["status"] == "ok" and body["postgis"].startswith("3.")
    from alembic.script import ScriptDirectory

    from gis_service.db.migrate import alembic_config

    assert body["schema"] == ScriptDirectory.from_config(alembic_config()).get_current_head()


@pytest.mark.parametrize("system", ["wgs84", "gcj02", "bd09"])
def test_locate_returns_the_chain_in_every_coord_sys(client, test_city, system):
    lon, lat = coords.from_wgs84(113.07, 34.02, system)
    r = client.get(
        "/api/v1/locate", params={"lon": float(lon), "lat": float(lat), "coord_sys": system}
    )
    assert r.status_code == 200
    body = r.json()
    assert [u["code"] for u in body["chain"]] == ["410199", "410199002", "410199002002"]
    assert body["community"]["code"] == "410199002002" and body["grid"] is None
    assert body["wgs84"]["lon"] == pytest.approx(113.07, abs=1e-9)


def test_locate_near_a_border_depends_on_the_datum(client, test_city):
    # 113.049 WGS-84 is west of the subdistrict border at 113.05; read as GCJ-02 it is
    # converted ~300 m further west; read as WGS-84 of a point 300 m east it flips.
    west = client.get("/api/v1/locate", params={"lon": 113.049, "lat": 34.02}).json()
    assert west["subdistrict"]["code"] == "410199001"
    gx, gy = coords.wgs84_to_gcj02(113.051, 34.02)
    east = client.get(
        "/api/v1/locate", params={"lon": float(gx), "lat": float(gy), "coord_sys": "gcj02"}
    ).json()
    assert east["subdistrict"]["code"] == "410199002"


def test_locate_outside_and_bad_input(client, test_city):
    r = client.get("/api/v1/locate", params={"lon": 100.0, "lat": 30.0})
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    r = client.get("/api/v1/locate", params={"lon": 113.0, "lat": 91})
    assert r.status_code == 422 and r.json()["field"] == "lat"
    r = client.get("/api/v1/locate", params={"lon": "east", "lat": 34})
    assert r.status_code == 422 and "lon" in r.json()["detail"]
    r = client.get("/api/v1/locate", params={"lon": 113, "lat": 34, "coord_sys": "utm"})
    assert r.status_code == 422 and "coord_sys" in r.json()["detail"]


def test_units_filter_page_and_link(client, test_city):
    r = client.get("/api/v1/units", params={"level": "community", "limit": 3})
    assert r.headers["content-type"].startswith("application/geo+json")
    body = r.json()
    assert body["numberMatched"] == 4 and body["numberReturned"] == 3
    nxt = next(link["href"] for link in body["links"] if link["rel"] == "next")
    rest = client.get(nxt).json()
    assert [f["id"] for f in rest["features"]] == ["410199002002"]
    by_parent = client.get("/api/v1/units", params={"parent": "410199001"}).json()
    assert [f["id"] for f in by_parent["features"]] == ["410199001001", "410199001002"]
    in_box = client.get(
        "/api/v1/units", params={"level": "community", "bbox": "113.06,34.06,113.07,34.07"}
    ).json()
    assert [f["id"] for f in in_box["features"]] == ["410199002001"]
    bad = client.get("/api/v1/units", params={"bbox": "1,2,3"})
    assert bad.status_code == 422 and bad.json()["field"] == "bbox"
    assert client.get("/api/v1/units", params={"limit": 5000}).status_code == 422


def test_unit_detail_has_ancestors_children_and_roster(client, test_city, tmp_path):
    from gis_service.imports.roster import replace_roster

    replace_roster(
        [
            {
                "unit_code": "410199001001",
                "role": "grid_leader",
                "name": "王芳",
                "phone": "13800000000",
            }
        ],
        filename="r",
        settings=test_city,
    )
    body = client.get("/api/v1/units/410199001001").json()
    props = body["properties"]
    assert [a["code"] for a in props["ancestors"]] == ["410199", "410199001"]
    assert props["roster"] == [
        {"role": "grid_leader", "name": "王芳", "phone": "13800000000", "photo_url": None}
    ]
    assert body["geometry"]["type"] == "MultiPolygon"
    assert client.get("/api/v1/units/410199").json()["properties"]["children"] == {"subdistrict": 2}
    assert client.get("/api/v1/units/410199009").status_code == 404
    assert client.get("/api/v1/units/abc").status_code == 422


def _upload(client, name: str, data: bytes, **form):
    return client.post("/api/v1/imports", headers=AUTH, files={"file": (name, data)}, data=form)


def test_import_api_returns_the_qa_report(client, test_city, tmp_path):
    grids = {
        "41019900100101": box(113.0, 34.05, 113.03, 34.1),
        "41019900100102": box(113.025, 34.05, 113.05, 34.1),
    }
    path = tmp_path / "g.geojson"
    frame(grids).to_file(path)
    r = _upload(client, "g.geojson", path.read_bytes(), kind="boundaries", level="grid")
    assert r.status_code == 201, r.json()
    body = r.json()
    assert body["report"]["inserted"] == 2 and len(body["report"]["overlaps"]) == 1
    status = client.get(body["status_url"], headers=AUTH).json()
    assert status["status"] == "succeeded" and status["report"]["inserted"] == 2
    # the QA report names features and people from the file: admins only
    anonymous = client.get(body["status_url"])
    assert anonymous.status_code == 401 and anonymous.json()["error"] == "unauthorized"


def test_import_api_zipped_shapefile(client, db, tmp_path):
    frame({"410199": box(113.0, 34.0, 113.1, 34.1)}).to_file(tmp_path / "d.shp")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for p in tmp_path.glob("d.*"):
            zf.write(p, p.name)
    r = _upload(client, "d.zip", buf.getvalue(), kind="boundaries", level="district")
    assert r.status_code == 201 and r.json()["report"]["inserted"] == 1


def test_zip_bombs_and_crowded_zips_are_refused_before_unpacking(db, tmp_path):
    """OWASP API4: a small zip that unpacks to more than GIS_ZIP_MAX_BYTES, or holds more
    than GIS_ZIP_MAX_MEMBERS files, is refused (422) and leaves nothing on disk or in the
    database; within the limits the same shapefile imports."""
    from fastapi.testclient import TestClient

    from gis_service.app import create_app

    frame({"410199": box(113.0, 34.0, 113.1, 34.1)}).to_file(tmp_path / "d.shp")
    parts = sorted(tmp_path.glob("d.*"))

    def zipped(extra: dict[str, bytes]) -> bytes:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for p in parts:
                zf.write(p, p.name)
            for name, data in extra.items():
                zf.writestr(name, data)
        return buf.getvalue()

    small = db.model_copy(update={"zip_max_bytes": 5 * 1024 * 1024, "zip_max_members": 20})
    bomb = zipped({"padding.bin": bytes(50 * 1024 * 1024)})  # 50 MB of zeros, ~50 KB zipped
    assert len(bomb) < 200_000
    crowded = zipped({f"x/{i}.txt": b"x" for i in range(30)})
    with TestClient(create_app(small)) as c:
        for name, data, words in (
            ("bomb.zip", bomb, "unpacks to"),
            ("crowded.zip", crowded, "files in the zip"),
        ):
            r = _upload(c, name, data, kind="boundaries", level="district")
            assert r.status_code == 422 and r.json()["error"] == "import_rejected", r.text
            assert words in r.json()["detail"]
        assert not list((small.var_dir / "uploads").glob("*/unzipped/padding.bin"))
        assert c.get("/api/v1/units").json()["numberMatched"] == 0
        r = _upload(c, "ok.zip", zipped({}), kind="boundaries", level="district")
        assert r.status_code == 201 and r.json()["report"]["inserted"] == 1


def test_import_api_rejects_bad_files_and_stores_nothing(client, test_city):
    r = _upload(
        client,
        "broken.geojson",
        b'{"type": "FeatureCollection", "features": [',
        kind="boundaries",
        level="grid",
    )
    assert r.status_code == 422 and r.json()["error"] == "import_rejected"
    assert client.get(r.json()["status_url"], headers=AUTH).json()["status"] == "failed"
    r = _upload(client, "x.txt", b"hello", kind="boundaries", level="grid")
    assert r.status_code == 422 and "unsupported format" in r.json()["detail"]
    r = _upload(client, "x.geojson", b"{}", kind="boundaries")
    assert r.status_code == 422 and r.json()["field"] == "level"
    assert client.get("/api/v1/units", params={"level": "grid"}).json()["numberMatched"] == 0


def test_import_api_needs_an_admin(client, test_city):
    r = client.post(
        "/api/v1/imports",
        files={"file": ("a.geojson", b"{}")},
        data={"kind": "boundaries", "level": "district"},
    )
    assert r.status_code == 401 and r.json()["error"] == "unauthorized"
    assert r.headers["www-authenticate"] == "Bearer"
    planner = make_user(test_city, "planner", scopes=["410199"])
    r = client.post(
        "/api/v1/imports",
        headers=planner,
        files={"file": ("a.geojson", b"{}")},
        data={"kind": "boundaries", "level": "district"},
    )
    assert r.status_code == 403 and r.json()["error"] == "forbidden"


def test_service_points_filters(client, test_city, tmp_path):
    import pandas as pd

    from gis_service.imports.points import PointOptions, import_points

    path = tmp_path / "p.csv"
    pd.DataFrame({"name": ["甲", "乙"], "lon": [113.01, 113.07], "lat": [34.07, 34.02]}).to_csv(
        path, index=False
    )
    import_points(path, PointOptions(kind="red_home"), settings=test_city)
    fc = client.get("/api/v1/service-points", params={"kind": "red_home"}).json()
    assert fc["numberMatched"] == 2
    fc = client.get("/api/v1/service-points", params={"unit": "410199002"}).json()
    assert [f["properties"]["name"] for f in fc["features"]] == ["乙"]
    fc = client.get("/api/v1/service-points", params={"category": "culture_education"}).json()
    assert fc["numberMatched"] == 2
    assert client.get("/api/v1/service-points", params={"kind": "bar"}).status_code == 422
    kinds = client.get("/api/v1/service-kinds").json()
    assert len(kinds["categories"]) == 6
    assert {k["code"] for k in kinds["kinds"] if k["counts_for_party_reach"]} == {
        "red_home",
        "party_service_center",
        "party_org",
    }


def test_docs_are_served_without_the_internet(client):
    page = client.get("/docs").text
    assert "/static/swagger/swagger-ui-bundle.js" in page and "https://" not in page
    assert client.get("/static/swagger/swagger-ui-bundle.js").status_code == 200
    assert client.get("/openapi.json").json()["paths"]["/api/v1/locate"]


def test_slow_import_answers_202_with_a_status_url(test_city, tmp_path):
    import time

    from fastapi.testclient import TestClient

    from gis_service.app import create_app

    slow = test_city.model_copy(update={"import_wait_seconds": 0.0})
    path = tmp_path / "g.geojson"
    frame({"41019900100101": box(113.0, 34.05, 113.05, 34.1)}).to_file(path)
    with TestClient(create_app(slow)) as c:
        r = _upload(c, "g.geojson", path.read_bytes(), kind="boundaries", level="grid")
        assert r.status_code == 202 and r.headers["location"] == r.json()["status_url"]
        for _ in range(100):
            status = c.get(r.json()["status_url"], headers=ADMIN_AUTH).json()
            if status["status"] == "succeeded":
                break
            time.sleep(0.1)
        assert status["status"] == "succeeded" and status["report"]["inserted"] == 1
        assert c.get("/api/v1/imports/not-a-uuid", headers=ADMIN_AUTH).status_code == 404


def test_every_schema_reference_in_the_openapi_resolves(settings):
    """Clients are generated from /openapi.json: a $ref to a schema it does not define
    breaks every generator (a request body declared by hand once referred to an enum)."""
    import json
    import re

    from gis_service.app import create_app

    spec = create_app(settings).openapi()
    refs = set(re.findall(r'"#/components/schemas/([^"]+)"', json.dumps(spec)))
    assert refs and not refs - set(spec["components"]["schemas"])
    assert "$defs" not in json.dumps(spec["paths"])


def test_body_and_upload_limits_are_settings(db, tmp_path):
    """GIS_BODY_MAX_BYTES and GIS_IMPORT_MAX_BYTES decide the 413s, in our error body, and
    nothing is stored."""
    from fastapi.testclient import TestClient

    from gis_service.app import create_app

    small = db.model_copy(update={"body_max_bytes": 2048, "import_max_bytes": 4096})
    frame({"410199": box(113.0, 34.0, 113.1, 34.1)}).to_file(tmp_path / "d.geojson")
    data = (tmp_path / "d.geojson").read_bytes()
    with TestClient(create_app(small)) as c:
        r = c.post(
            "/api/v1/cases",
            headers=AUTH,
            json={
                "category": "environment.garbage",
                "lon": 113.01,
                "lat": 34.07,
                "description": "长" * 2000,
            },
        )
        assert r.status_code == 413 and r.json()["error"] == "too_large", r.text
        big = data + b" " * 5000  # still one valid GeoJSON document
        r = _upload(c, "d.geojson", big, kind="boundaries", level="district")
        assert r.status_code == 413 and r.json()["field"] == "file", r.text
        assert c.get("/api/v1/units").json()["numberMatched"] == 0
        r = _upload(c, "d.geojson", data, kind="boundaries", level="district")
        assert r.status_code == 201, r.text
