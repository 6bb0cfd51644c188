"""The monthly report (gis_service/reports/): its figures against the statistics API, the
drill-down against the cases in the database, the PDF read back with pypdf, frozen sent
versions, corrections with their reason and diff, the jurisdiction, and the CLI."""

from __future__ import annotations

import io
import time
import unicodedata

import pypdf
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from gis_service.app import create_app
from gis_service.db.engine import get_engine, transaction
from gis_service.reports import page
from gis_service.reports.figures import SHOWN, month_range, parse_month
from gis_service.stats.resolution import CASE_FIGURES
from gis_service.timezone import local_date, zone_name
from tests.conftest import IN_GRID_1, IN_GRID_2, make_user
from tests.test_cases import act, report
from tests.test_cli import run
from tests.test_stats import close

SUB = "410199001"  # the west subdistrict: communities 410199001001 and 410199001002
COMMUNITY_A = "410199001001"
IN_COMMUNITY_B = (IN_GRID_1[0], IN_GRID_1[1] - 0.05)  # 41019900100201


@pytest.fixture
def api(case_city):
    with TestClient(create_app(case_city["settings"])) as c:
        yield c


def this_month(settings) -> str:
    return local_date(settings).strftime("%Y-%m")


def make(api, who, unit, month, **extra):
    """POST a draft; follows the job's status URL when printing outlasts the wait."""
    r = api.post(
        "/api/v1/reports/monthly", headers=who, json={"unit": unit, "month": month, **extra}
    )
    if r.status_code == 202:
        job = r.json()
        for _ in range(120):
            time.sleep(0.5)
            job = api.get(job["status_url"], headers=who).json()
            if job["status"] != "running":
                break
        assert job["status"] == "done", job
        url = job["summary"].rsplit(" ", 1)[1]
        return api.get(url, headers=who)
    return r


def made(api, who, unit, month, **extra) -> dict:
    r = make(api, who, unit, month, **extra)
    assert r.status_code in (200, 201), r.text
    return r.json()


def pdf_text(body: bytes) -> tuple[int, str]:
    """Page count and text; NFKC, as the CJK fonts map some characters to their Kangxi
    radical look-alikes (⽉ U+2F49 for 月)."""
    reader = pypdf.PdfReader(io.BytesIO(body))
    words = "\n".join(p.extract_text() for p in reader.pages)
    return len(reader.pages), unicodedata.normalize("NFKC", words)


@pytest.fixture
def month_cases(api, case_city):
    """Cases of this month in the west subdistrict's two communities: closed (one with
    rework, rated 5 and 3), accepted and past its deadline (overdue), rejected, and one
    in the other community closed and rated 4."""
    c = case_city
    ids = [
        report(
            api, c["worker1"], point=(IN_GRID_1[0] + i * 1e-4, IN_GRID_1[1]), category=cat
        ).json()["id"]
        for i, cat in enumerate(
            ["environment.garbage", "environment.sewage", "safety.gas", "facilities.road"]
        )
    ]
    close(api, c, ids[0], score=5)
    close(api, c, ids[1], rework=True, score=3)
    act(api, c["sub1_sup"], ids[2], "accept")
    act(api, c["sub1_sup"], ids[3], "reject", note="不属于受理范围")
    with transaction(c["settings"]) as conn:
        conn.execute(
            text("UPDATE cases SET deadline_at = now() - interval '1 hour' WHERE id = :id"),
            {"id": ids[2]},
        )
    b = report(api, c["sub1_sup"], point=IN_COMMUNITY_B).json()["id"]
    close(api, c, b, score=4)
    report(api, c["worker2"], point=IN_GRID_2)  # the other subdistrict: never in the report
    return [*ids, b]


def oracle(settings, where: str, month: str, unit: str) -> list[int]:
    """Case ids of the month's cohort in ``unit`` matching ``where``, straight from SQL."""
    d0, d1 = month_range(parse_month(month))
    with get_engine(settings).connect() as conn:
        return list(
            conn.execute(
                text(
                    "SELECT c.id FROM cases c WHERE c.unit_code LIKE :u AND "
                    "c.status <> 'duplicate' AND "
                    f"(c.reported_at AT TIME ZONE :tz)::date BETWEEN :d0 AND :d1 AND {where} "
                    "ORDER BY c.id"
                ),
                {"u": unit + "%", "tz": zone_name(settings), "d0": d0, "d1": d1},
            ).scalars()
        )


def test_figures_match_the_statistics_and_drill_down_to_their_cases(api, case_city, month_cases):
    c, s = case_city, case_city["settings"]
    month = this_month(s)
    v = made(api, c["sub1_sup"], SUB, month)
    assert v["status"] == "draft" and v["version"] == 1 and v["changes"] is None
    f = v["figures"]
    d0, d1 = month_range(parse_month(month))
    params = {"from": d0.isoformat(), "to": d1.isoformat(), "unit": SUB}
    stats = api.get(
        "/api/v1/stats/resolution", headers=c["sub1_sup"], params={**params, "level": "community"}
    ).json()
    assert [u["code"] for u in f["table"]] == [u["code"] for u in stats["units"]]
    for row, want in zip(f["table"], stats["units"], strict=True):
        assert {k: row[k] for k in SHOWN} == {k: want[k] for k in SHOWN}
    own = api.get(
        "/api/v1/stats/resolution",
        headers=c["sub1_sup"],
        params={**params, "level": "subdistrict"},
    ).json()["units"][0]
    assert {k: f["totals"][k] for k in SHOWN} == {k: own[k] for k in SHOWN}
    assert f["totals"]["reported"] == len(month_cases) and f["trend"][-1]["month"] == month
    assert {k: f["trend"][-1][k] for k in SHOWN} == {k: own[k] for k in SHOWN}

    # every case-counting figure drills down to exactly its count of cases
    for row in [*f["table"], {"code": None, **f["totals"]}]:
        base = f"table.{row['code']}" if row["code"] else "totals"
        for figure in CASE_FIGURES:
            if figure not in row:
                continue
            r = api.get(f"{v['url']}/figures/{base}.{figure}/cases", headers=c["sub1_sup"])
            assert r.status_code == 200, r.text
            assert r.json()["count"] == row[figure], (base, figure)
    # … and to the cases the database holds for the rule
    rules = {
        "reported": "TRUE",
        "closed": "c.status = 'closed'",
        "rework": "c.status = 'closed' AND case_rework(c)",
        "rejected": "c.status = 'rejected'",
        "overdue_now": "case_overdue(c)",
        "satisfied": "c.rating >= 4",
    }
    for unit in (COMMUNITY_A, SUB):
        base = f"table.{unit}" if unit != SUB else "totals"
        for figure, rule in rules.items():
            got = api.get(f"{v['url']}/figures/{base}.{figure}/cases", headers=c["sub1_sup"])
            assert got.json()["case_ids"] == oracle(s, rule, month, unit), (unit, figure)
            assert [x["id"] for x in got.json()["cases"]] == got.json()["case_ids"]
    every = oracle(s, "TRUE", month, SUB)
    paged = api.get(
        f"{v['url']}/figures/totals.reported/cases",
        headers=c["sub1_sup"],
        params={"limit": 2, "offset": 1},
    ).json()
    assert paged["count"] == len(every) and paged["case_ids"] == every[1:3]
    assert [x["id"] for x in paged["cases"]] == every[1:3]
    rate = api.get(f"{v['url']}/figures/totals.resolution_rate/cases", headers=c["sub1_sup"])
    assert rate.json()["parts"] == {"numerator": "totals.closed", "denominator": "totals.accepted"}
    overdue_rule = (
        "c.accepted_at IS NOT NULL AND (case_overdue(c) OR (c.status = 'closed' "
        "AND NOT case_on_time(c) AND NOT case_on_time_extended(c)))"
    )
    assert [x["id"] for x in f["overdue"]] == oracle(s, overdue_rule, month, SUB) != []
    assert [x["id"] for x in f["rework"]] == oracle(s, "case_rework(c)", month, SUB) != []
    for key in ("overdue", "rework", "satisfaction.5", "satisfaction.3"):
        ids = api.get(f"{v['url']}/figures/{key}/cases", headers=c["sub1_sup"]).json()
        score = key.rpartition(".")[2]
        want = (
            oracle(s, f"c.rating = {score}", month, SUB)
            if key.startswith("satisfaction")
            else [x["id"] for x in f[key]]
        )
        assert ids["case_ids"] == want != []
    sat = f["satisfaction"]
    assert sum(sat["distribution"].values()) == sat["rated"] == f["totals"]["rated"] == 3
    assert sat["mean"] == pytest.approx((5 + 3 + 4) / 3, abs=0.01)
    bad = api.get(f"{v['url']}/figures/totals.nothing/cases", headers=c["sub1_sup"])
    assert bad.status_code == 404 and bad.json()["error"] == "not_found"

    # the PDF is a real PDF holding the unit's name and its figures
    r = api.get(v["pdf_url"], headers=c["sub1_sup"])
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    assert r.content.startswith(b"%PDF")
    pages, words = pdf_text(r.content)
    assert pages > 0
    names = {u["code"]: u["name"] for u in f["table"]}
    assert f["unit"]["name"] in words and all(n in words for n in names.values())
    assert page.pct(f["totals"]["resolution_rate"]) in words
    assert next(x["case_no"] for x in f["overdue"]) in words
    # English on request
    en = made(api, c["sub1_sup"], SUB, month, lang="en")
    _, words_en = pdf_text(api.get(en["pdf_url"], headers=c["sub1_sup"]).content)
    assert "Monthly report" in words_en and "Resolution rate" in words_en


def test_a_sent_version_is_frozen_and_given_back_byte_for_byte(api, case_city, month_cases):
    c, s = case_city, case_city["settings"]
    v = made(api, c["sub1_sup"], SUB, this_month(s))
    sent = api.post(f"{v['url']}/send", headers=c["sub1_sup"], json={})
    assert sent.status_code == 200, sent.text
    body = sent.json()
    assert body["status"] == "sent" and body["sent_by"] and body["sent_at"]
    assert body["figures"] == v["figures"]  # frozen as computed
    first = api.get(v["pdf_url"], headers=c["sub1_sup"])
    again = api.get(v["pdf_url"], headers=c["district_sup"])
    assert first.content == again.content
    import hashlib

    assert hashlib.sha256(first.content).hexdigest() == body["pdf_sha256"]
    assert first.headers["etag"] == f'"{body["pdf_sha256"]}"'
    # the page drawn again from the frozen figures is the same page
    stored = api.get(v["url"], headers=c["sub1_sup"]).json()["figures"]
    assert page.render(stored, body) == page.render(body["figures"], body)
    # the database refuses to change or delete it
    for sql in (
        "UPDATE monthly_report SET pdf = 'x' WHERE id = :id",
        "UPDATE monthly_report SET figures = '{}' WHERE id = :id",
        "DELETE FROM monthly_report WHERE id = :id",
    ):
        with pytest.raises(DBAPIError) as err, transaction(s) as conn:
            conn.execute(text(sql), {"id": v["id"]})
        assert err.value.orig.pgcode == "GSRPT"
    again = api.post(f"{v['url']}/send", headers=c["sub1_sup"], json={})
    assert again.status_code == 409 and again.json()["error"] == "conflict"
    # a draft is not frozen
    draft = made(api, c["sub1_sup"], SUB, this_month(s))
    with transaction(s) as conn:
        conn.execute(text("UPDATE monthly_report SET lang = lang WHERE id = :id"), draft)


def test_a_correction_needs_a_reason_and_shows_what_changed(api, case_city, month_cases):
    c, s = case_city, case_city["settings"]
    month = this_month(s)
    v1 = made(api, c["sub1_sup"], SUB, month)
    assert api.post(f"{v1['url']}/send", headers=c["sub1_sup"], json={}).status_code == 200
    # the overdue case is closed after all: the figures move
    overdue = month_cases[2]
    act(api, c["sub1_sup"], overdue, "dispatch", team_id=c["teams"]["b"])
    for action in ("start", "handle"):
        from tests.test_cases import photo

        if action == "handle":
            photo(api, c["team_b"], overdue)
        act(api, c["team_b"], overdue, action, note="处理完毕")
    act(api, c["sub1_sup"], overdue, "verify", passed=True)
    v2 = made(api, c["sub1_sup"], SUB, month)
    assert v2["version"] == 2 and v2["previous_id"] == v1["id"]
    refused = api.post(f"{v2['url']}/send", headers=c["sub1_sup"], json={"reason": "  "})
    assert refused.status_code == 422 and refused.json()["field"] == "reason"
    reason = "补录一件已结案件"
    sent = api.post(f"{v2['url']}/send", headers=c["sub1_sup"], json={"reason": reason})
    assert sent.status_code == 200, sent.text
    diff = api.get(f"{v2['url']}/diff", headers=c["sub1_sup"]).json()
    assert diff["previous_version"] == 1 and diff["reason"] == reason
    changed = {(d["key"], d["old"], d["new"]) for d in diff["changes"]}
    old, new = v1["figures"], v2["figures"]
    row = {u["code"]: u for u in old["table"]}[COMMUNITY_A]
    row2 = {u["code"]: u for u in new["table"]}[COMMUNITY_A]
    assert row2["closed"] == row["closed"] + 1
    assert (f"table.{COMMUNITY_A}.closed", row["closed"], row2["closed"]) in changed
    assert ("totals.closed", old["totals"]["closed"], new["totals"]["closed"]) in changed
    want = {
        (f"table.{u}.{k}", a[k], b[k])
        for u, a, b in ((COMMUNITY_A, row, row2),)
        for k in SHOWN
        if a[k] != b[k]
    } | {(f"totals.{k}", old["totals"][k], new["totals"][k]) for k in SHOWN
         if old["totals"][k] != new["totals"][k]}  # fmt: skip
    assert want <= changed
    assert sent.json()["changes"] == diff["changes"]
    _, words = pdf_text(api.get(v2["pdf_url"], headers=c["sub1_sup"]).content)
    assert reason in words and "与上一报送版本相比的变化" in words
    # the first version is still as it was sent
    assert api.get(v1["url"], headers=c["sub1_sup"]).json()["figures"] == old
    listed = api.get(
        "/api/v1/reports/monthly", headers=c["sub1_sup"], params={"unit": SUB, "month": month}
    ).json()["versions"]
    assert [(x["version"], x["status"]) for x in listed] == [(2, "sent"), (1, "sent")]


def test_only_supervisors_covering_the_unit_see_its_reports(api, case_city, month_cases):
    c, s = case_city, case_city["settings"]
    month = this_month(s)
    v = made(api, c["sub1_sup"], COMMUNITY_A, month)
    other_community = make_user(s, "supervisor", scopes=["410199001002"], username="cs-b2")
    for who, code in ((other_community, 403), (c["sub2_sup"], 403), (c["worker1"], 403)):
        assert make(api, who, COMMUNITY_A, month).status_code == code
        r = api.get("/api/v1/reports/monthly", headers=who, params={"unit": COMMUNITY_A})
        assert r.status_code == 403 and r.json()["error"] == "forbidden"
    for who in (other_community, c["sub2_sup"]):
        for path in ("", "/pdf", "/diff", "/figures/totals.reported/cases"):
            assert api.get(v["url"] + path, headers=who).status_code == 404, path
        assert api.post(f"{v['url']}/send", headers=who, json={}).status_code == 404
    for who in (c["district_sup"], c["admin"]):
        assert api.get(v["url"], headers=who).status_code == 200
    assert api.get(v["url"]).status_code == 401
    # bad input: named
    for body, field in (
        ({"unit": SUB, "month": "2026-13"}, "month"),
        ({"unit": "41019900100101001", "month": month}, "unit"),
    ):
        r = api.post("/api/v1/reports/monthly", headers=c["admin"], json=body)
        assert r.status_code == 422 and field in r.json()["field"], r.text
    r = api.post(
        "/api/v1/reports/monthly", headers=c["admin"], json={"unit": "410199009", "month": month}
    )
    assert r.status_code == 404 and "410199009" in r.json()["detail"]


def test_cli_makes_and_sends_a_report_and_names_a_bad_month(case_city, month_cases, tmp_path):
    s = case_city["settings"]
    bad = run(s, "report", "monthly", "--unit", SUB, "--month", "2026-13")
    assert bad.returncode != 0 and "month '2026-13' is not YYYY-MM" in bad.stderr
    missing = run(s, "report", "monthly", "--unit", "410199009", "--month", "2026-10")
    assert missing.returncode != 0 and "no unit 410199009" in missing.stderr
    out = tmp_path / "r.pdf"
    done = run(s, "report", "monthly", "--unit", SUB, "--month", this_month(s), "--out",
               str(out), "--send")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "v1 sent" in done.stderr and f"{len(month_cases)} cases" in done.stderr
    assert out.read_bytes().startswith(b"%PDF")
    with get_engine(s).connect() as conn:
        stored = conn.execute(text("SELECT pdf FROM monthly_report")).scalar_one()
    assert bytes(stored) == out.read_bytes()
    again = run(s, "report", "monthly", "--unit", SUB, "--month", this_month(s), "--send")
    assert again.returncode != 0 and "needs a reason" in again.stderr


def test_a_slow_print_answers_202_and_its_job_names_the_version(case_city, month_cases):
    """Past GIS_IMPORT_WAIT_SECONDS the draft is made on: 202, the job's status URL (also
    in Location), and when done its summary names the version."""
    c = case_city
    quick = c["settings"].model_copy(update={"import_wait_seconds": 0.0})
    with TestClient(create_app(quick)) as api:
        r = api.post(
            "/api/v1/reports/monthly",
            headers=c["sub1_sup"],
            json={"unit": SUB, "month": this_month(quick)},
        )
        assert r.status_code == 202, r.text
        job = r.json()
        assert r.headers["location"] == job["status_url"]
        assert job["status_url"].startswith("/api/v1/reports/jobs/")
        for _ in range(240):
            job = api.get(job["status_url"], headers=c["sub1_sup"]).json()
            if job["status"] != "running":
                break
            time.sleep(0.25)
        assert job["status"] == "done" and job["error"] is None, job
        version = api.get(job["summary"].rsplit(" ", 1)[1], headers=c["sub1_sup"])
        assert version.status_code == 200 and version.json()["figures"]["unit"]["code"] == SUB
        missing = api.get("/api/v1/reports/jobs/nothing", headers=c["sub1_sup"])
        assert missing.status_code == 404
