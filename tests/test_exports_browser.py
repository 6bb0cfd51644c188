"""The desk's export button in headless Chromium against a real server on the demo: a
community supervisor filters the queue, exports it, watches the job's progress and gets
the file, holding exactly the cases the queue's API answers for the same tab and filters."""

from __future__ import annotations

import csv
import io

import httpx
import pytest

from tests.browser import browser_context, live_server
from tests.test_desk_browser import COMMUNITY, DESK, at_the_front_door, token


@pytest.fixture(scope="module")
def server(demo_settings):
    with live_server(demo_settings) as base:
        yield base


def test_the_desk_exports_its_filtered_queue(server, tmp_path):
    supervisor = f"sup{COMMUNITY}"
    auth = token(server, supervisor)
    with browser_context(**DESK, accept_downloads=True) as (context, watch):
        page = context.new_page()
        at_the_front_door(page, server, supervisor, "/desk/")
        page.wait_for_function("() => window.gisDesk && window.gisDesk.ready")
        before = page.evaluate("() => window.gisDesk.reloads")
        page.get_by_test_id("tab-all").click()
        page.wait_for_function("n => window.gisDesk.reloads > n", arg=before)
        page.get_by_test_id("filter-status").select_option("closed")
        before = page.evaluate("() => window.gisDesk.reloads")
        page.get_by_test_id("filter-apply").click()
        page.wait_for_function("n => window.gisDesk.reloads > n", arg=before)
        page.get_by_test_id("export-format").select_option("csv")
        with page.expect_download(timeout=60_000) as info:
            page.get_by_test_id("export").click()
        download = info.value
        assert download.suggested_filename.startswith("案件-")
        assert download.suggested_filename.endswith(".csv")
        path = tmp_path / "desk.csv"
        download.save_as(path)
        status = page.get_by_test_id("export-status").inner_text()
        assert watch.external == [] and watch.console_errors == []
    rows = list(csv.DictReader(io.StringIO(path.read_bytes().decode("utf-8-sig"))))
    listed, offset, matched = set(), 0, None
    while matched is None or offset < matched:
        queue = httpx.get(
            f"{server}/api/v1/desk/queue",
            headers=auth,
            params={"status": "closed", "limit": 1000, "offset": offset},
        ).json()
        matched = queue["numberMatched"]
        listed |= {f["properties"]["case_no"] for f in queue["features"]}
        offset += 1000
    assert {r["案件编号"] for r in rows} == listed
    assert rows and all(r["状态"] == "已结案" for r in rows)
    assert str(matched) in status
