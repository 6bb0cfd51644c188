"""A shapefile's .dbf without a .cpg is decoded by the code page its header declares (the
dBASE language driver ID, byte 29); only a header declaring none is guessed. Files are
written here with GDAL (pyogrio) in code page 936 and imported through the console script
and through ``POST /api/v1/imports``."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import geopandas as gpd
import pyogrio
from sqlalchemy import text

from gis_service.db.engine import get_engine
from gis_service.imports.readers import read_vector
from tests.conftest import ADMIN_AUTH, SUBDISTRICTS
from tests.test_cli import run

LDID_CP936 = 0x4D
# Every character's GBK bytes are also a valid UTF-8 sequence ([C2-DF][80-BF]), so the
# whole .dbf decodes as UTF-8 too — into the wrong characters. Only the header says which.
AMBIGUOUS = ["山水园", "学校"]
PLAIN = ["金水区花园路街道", "人民路街道"]


def _shapefile(folder: Path, names: list[str], ldid: int) -> Path:
    """Subdistricts of the test city with these names, in GBK, without a .cpg."""
    codes = list(SUBDISTRICTS)[: len(names)]
    gdf = gpd.GeoDataFrame(
        {"code": codes, "name": names},
        geometry=[SUBDISTRICTS[c] for c in codes],
        crs=4326,
    )
    folder.mkdir(exist_ok=True)
    path = folder / "subdistricts.shp"
    pyogrio.write_dataframe(gdf, path, encoding="cp936")
    path.with_suffix(".cpg").unlink()
    dbf = path.with_suffix(".dbf")
    raw = bytearray(dbf.read_bytes())
    assert names[0].encode("gbk") in raw  # really GBK on disk
    raw[29] = ldid
    dbf.write_bytes(bytes(raw))
    return path


def _names(settings) -> list[str]:
    with get_engine(settings).connect() as conn:
        sql = "SELECT name FROM admin_unit WHERE level = 'subdistrict' ORDER BY code"
        return [r[0] for r in conn.execute(text(sql))]


def test_the_cli_reads_the_code_page_the_dbf_header_declares(test_city, tmp_path):
    path = _shapefile(tmp_path, PLAIN, LDID_CP936)
    done = run(test_city, "import", "boundaries", str(path), "--level", "subdistrict", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["encoding"] == "LDID/77"
    assert any("language driver ID 0x4D" in n for n in report["notes"])
    assert _names(test_city) == PLAIN


def test_a_declared_code_page_wins_over_text_that_is_also_utf8(test_city, tmp_path):
    path = _shapefile(tmp_path, AMBIGUOUS, LDID_CP936)
    raw = path.with_suffix(".dbf").read_bytes()
    header_len = int.from_bytes(raw[8:10], "little")
    misread = raw[header_len:].decode("utf-8")  # no error: the guess alone would say UTF-8
    assert AMBIGUOUS[0] not in misread
    done = run(test_city, "import", "boundaries", str(path), "--level", "subdistrict")
    assert done.returncode == 0, done.stderr
    assert _names(test_city) == AMBIGUOUS


def test_a_header_declaring_no_code_page_is_still_guessed(tmp_path):
    plain = read_vector(_shapefile(tmp_path / "a", PLAIN, 0))
    assert (plain.encoding, list(plain.frame["name"])) == ("GB18030", PLAIN)
    assert "no code page in the .dbf header" in plain.notes[0]
    # with nothing declared, text that is valid UTF-8 is read as UTF-8: the guess's limit
    ambiguous = read_vector(_shapefile(tmp_path / "b", AMBIGUOUS, 0))
    assert ambiguous.encoding == "UTF-8" and list(ambiguous.frame["name"]) != AMBIGUOUS


def test_the_api_reads_a_zipped_shapefile_by_its_declared_code_page(client, test_city, tmp_path):
    path = _shapefile(tmp_path, AMBIGUOUS, LDID_CP936)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for part in path.parent.glob("subdistricts.*"):
            zf.write(part, part.name)
    assert not any(n.endswith(".cpg") for n in zipfile.ZipFile(buf).namelist())
    r = client.post(
        "/api/v1/imports",
        headers=ADMIN_AUTH,
        files={"file": ("subdistricts.zip", buf.getvalue())},
        data={"kind": "boundaries", "level": "subdistrict"},
    )
    assert r.status_code == 201, r.json()
    assert r.json()["report"]["encoding"] == "LDID/77"
    assert _names(test_city) == AMBIGUOUS
