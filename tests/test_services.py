"""The app's services (api/services.py) reach routes through typed dependencies; one that
is not running answers 503 ``service_not_ready`` in our error body, and the services
survive the app being stopped and started again (as the schema fuzzing does per
operation)."""

from __future__ import annotations

import threading

import pytest
from fastapi.testclient import TestClient

from gis_service.access.jobs import AccessJobs
from gis_service.api.services import Services, services_of
from gis_service.app import create_app
from gis_service.errors import ServiceNotReady
from tests.conftest import ADMIN_AUTH


def test_the_services_are_stored_once_on_the_app(settings):
    app = create_app(settings)
    services = services_of(app)
    assert isinstance(services, Services)
    assert services.settings is settings
    assert services.case_index.cube is services.cube
    # the imports' executor lives only while the app runs
    assert services.import_executor is None
    with TestClient(app):
        assert services.import_executor is not None
    assert services.import_executor is None


def test_an_import_outside_the_running_app_is_refused_with_503(settings):
    client = TestClient(create_app(settings))  # no lifespan: the executor does not exist
    r = client.post(
        "/api/v1/imports",
        headers=ADMIN_AUTH,
        files={"file": ("a.geojson", b"{}")},
        data={"kind": "boundaries", "level": "district"},
    )
    assert r.status_code == 503
    assert r.json()["error"] == "service_not_ready"
    assert r.json()["service"] == "imports"


def test_access_jobs_run_again_after_a_shutdown():
    jobs = AccessJobs()
    assert jobs.run("a", lambda progress: 1, wait=5) == 1
    jobs.shutdown()
    assert jobs.run("a", lambda progress: 2, wait=5) == 2
    jobs.shutdown()


def test_a_job_cut_off_by_a_shutdown_fails_instead_of_hanging():
    jobs = AccessJobs()
    started, release = threading.Event(), threading.Event()

    def slow(progress):
        started.set()
        release.wait(10)
        return "late"

    from gis_service.access.jobs import Pending

    with pytest.raises(Pending):
        jobs.run("slow", slow, wait=0.01)
    assert started.wait(5)
    jobs.shutdown()
    release.set()
    job = jobs.get("slow")
    assert job is not None and job.public()["status"] == "failed"
    with pytest.raises(ServiceNotReady):
        job.future.result(timeout=1)
    # the next request starts the job anew instead of waiting on the dead one
    assert jobs.run("slow", lambda progress: "again", wait=5) == "again"
    jobs.shutdown()


@pytest.mark.parametrize(("lon", "lat"), [(-180, 85), (180, -85), (-180, -85), (179.99, 85)])
def test_picking_at_the_edge_of_the_world_answers(demo_client, lon, lat):
    """Found by the schema fuzzing: the neighbours of a cell at the world's edge wrapped
    around the unsigned cell keys (500). Nothing is there: ``{"id": null}``."""
    r = demo_client.get(f"/tiles/cases/pick?lon={lon}&lat={lat}&z=0", headers=ADMIN_AUTH)
    assert r.status_code == 200
    assert set(r.json()) == {"id"}
