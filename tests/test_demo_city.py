"""The city generator (issue 19 item 6): every division's share of residents and cases, the
years of history, timelines only for the recent years, the foreign keys put back, and bad
input refused. One small division (上街区) stands in for the twelve."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import shapely
from pyproj import Geod
from sqlalchemy import text
from typer.testing import CliRunner

from gis_service.cli.main import app
from gis_service.db.engine import get_engine
from gis_service.demo import city
from tests.conftest import TEST_DB, _fresh_database

CODE = "410106"  # 上街区, the smallest division
CASES = 400_000  # city-wide: 上街区's share is a few thousand
YEARS = 2


def rows(settings, sql: str, **params):
    with get_engine(settings).connect() as conn:
        return conn.execute(text(sql), params).all()


def foreign_keys(settings) -> set[str]:
    return {
        r[0]
        for r in rows(
            settings,
            "SELECT conrelid::regclass || '.' || conname FROM pg_constraint "
            "WHERE contype = 'f' AND conrelid IN ('cases'::regclass, 'case_event'::regclass) "
            "AND conparentid = 0",  # the parents' own keys, not their copies on each month
        )
    }


@pytest.fixture(scope="module")
def city_db():
    settings = _fresh_database(f"{TEST_DB}_city")
    keys = foreign_keys(settings)
    result = city.load_city(
        settings, cases_total=CASES, years=YEARS, timeline_years=1, only=[CODE], seed=5
    )
    return settings, result, keys


def test_shares_follow_the_residents():
    areas = {"410105": 240.0, "410106": 60.0, "410122": 1400.0}
    pops = city.populations(areas)
    assert pops["410105"] == city.SEED.population
    assert abs(sum(pops.values()) - city.CITY_POPULATION) <= len(areas)
    # an urban square kilometre weighs URBAN_WEIGHT times a county's
    assert pops["410106"] / pops["410122"] == pytest.approx(60 * city.URBAN_WEIGHT / 1400, rel=1e-4)
    small, seed = city.size_for(282_000), city.SEED
    assert small.grids == round(seed.grids * 282_000 / seed.population)
    assert city.size_for(1_000).subdistricts == 3  # never fewer than three


def test_a_division_gets_its_grid_and_its_share_of_cases(city_db):
    settings, result, _keys = city_db
    assert list(result.divisions) == [CODE]
    geod = Geod(ellps="WGS84")
    outlines = {
        c: shapely.from_wkb(bytes(w))
        for c, w in rows(
            settings, "SELECT code, ST_AsBinary(geom) FROM admin_unit WHERE level = 'district'"
        )
    }
    areas = {c: abs(geod.geometry_area_perimeter(g)[0]) / 1e6 for c, g in outlines.items()}
    pops = city.populations(areas)
    assert result.divisions[CODE] == pops[CODE]
    (grids,) = rows(
        settings,
        "SELECT count(*) FROM admin_unit WHERE level = 'grid' AND code LIKE :p",
        p=CODE + "%",
    )[0]
    assert grids == city.size_for(pops[CODE]).grids == result.grids
    # every unit lies inside the division's outline
    (outside,) = rows(
        settings,
        "SELECT count(*) FROM admin_unit u, admin_unit d WHERE d.code = :c "
        "AND u.code LIKE :p AND u.level <> 'district' "
        "AND NOT ST_CoveredBy(u.geom, ST_Buffer(d.geom::geography, 1)::geometry)",
        c=CODE,
        p=CODE + "%",
    )[0]
    assert outside == 0
    want = round(CASES * pops[CODE] / sum(pops.values()))
    (n, distinct_no, foreign) = rows(
        settings,
        "SELECT count(*), count(DISTINCT case_no), count(*) FILTER (WHERE unit_code NOT LIKE :p) "
        "FROM cases",
        p=CODE + "%",
    )[0]
    assert n == want == result.cases
    assert distinct_no == n and foreign == 0


def test_years_of_history_with_timelines_for_the_recent_one(city_db):
    settings, result, _keys = city_db
    today = datetime.now(ZoneInfo(settings.timezone)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    cut = today - timedelta(days=365)
    per_year = dict(
        rows(
            settings,
            "SELECT (reported_at >= :cut), count(*) FROM cases "
            "WHERE reported_at >= :start AND reported_at < :end GROUP BY 1",
            cut=cut,
            start=today - timedelta(days=365 * YEARS + 1),
            end=today,
        )
    )
    assert per_year[True] + per_year[False] == result.cases
    assert per_year[True] == round(result.cases * 1 / YEARS)  # timeline_years of YEARS
    old_with_events, recent_without = rows(
        settings,
        "SELECT count(*) FILTER (WHERE c.reported_at < :cut AND e.n > 0), "
        "       count(*) FILTER (WHERE c.reported_at >= :cut AND coalesce(e.n, 0) = 0) "
        "FROM cases c LEFT JOIN (SELECT case_id, count(*) n FROM case_event GROUP BY 1) e "
        "ON e.case_id = c.id",
        cut=cut,
    )[0]
    assert old_with_events == 0 and recent_without == 0
    assert result.events == rows(settings, "SELECT count(*) FROM case_event")[0][0] > 0


def test_the_foreign_keys_are_back_and_a_second_run_adds_nothing(city_db):
    settings, result, keys = city_db
    assert foreign_keys(settings) == keys and keys
    again = city.load_city(settings, cases_total=CASES, years=YEARS, only=[CODE], seed=5)
    assert again.cases == 0 and again.grids == 0
    assert rows(settings, "SELECT count(*) FROM cases")[0][0] == result.cases


def count_units(settings) -> int:
    return rows(settings, "SELECT count(*) FROM admin_unit")[0][0]


def test_bad_input_is_named_and_nothing_is_written(settings):
    before = count_units(settings)
    runner = CliRunner()
    out = runner.invoke(app, ["demo", "--city", "--district", "410199"])
    assert out.exit_code == 2 and "410199" in out.output
    out = runner.invoke(app, ["demo", "--district", CODE])
    assert out.exit_code == 2 and "--city" in out.output
    with pytest.raises(ValueError, match="years"):
        city.load_city(settings, years=0)
    with pytest.raises(ValueError, match="410199"):
        city.load_city(settings, only=["410199"])
    assert count_units(settings) == before
