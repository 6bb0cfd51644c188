"""Schema fuzzing: schemathesis sends generated requests, valid and invalid, to every
operation of the app's own OpenAPI, as an admin and as a grid worker, against a database
holding the whole demo city; every answer must be documented and match its schema.

Checks (schemathesis' names): ``not_a_server_error`` (no 5xx), ``status_code_conformance``
(the status is one the operation declares), ``content_type_conformance`` (the media type
is one it declares for that status) and ``response_schema_conformance`` (the body matches
the declared schema: our ErrorBody for refusals, the route's model for answers).

The database is the demo loaded fresh for this module (~10 s): fuzzing reports cases and
moves them along, which the shared demo database (``demo_settings``) must not see.
Bounded: a few examples per operation, no shrinking, a deadline per example.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.python.asgi import shutdown_lifespans
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import text

from gis_service.app import create_app
from gis_service.auth import sessions
from gis_service.db.engine import get_engine
from gis_service.demo.run import load_demo
from gis_service.settings import Settings
from tests.conftest import TEST_DB, TEST_SECRET, _fresh_database

#: examples per operation; each is sent once as an admin and once as a grid worker
MAX_EXAMPLES = 12
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
#: operations not fuzzed, each with its reason (none is left out silently)
EXCLUDED: dict[str, str] = {}

# The app is built at import (schemathesis parametrizes from its OpenAPI, which needs no
# database); its database is made and filled by the ``identities`` fixture before the
# first request, and its lifespan starts with that request.
FUZZ_SETTINGS = Settings(
    db_name=f"{TEST_DB}_fuzz",
    secret_key=TEST_SECRET,
    import_wait_seconds=30,
    tile_freshness_seconds=0,
    photo_dir=Path(tempfile.mkdtemp(prefix="fuzz-photos-")),
)
APP = create_app(FUZZ_SETTINGS)
schema = schemathesis.openapi.from_dict(APP.openapi())
schema.config.generation.update(max_examples=MAX_EXAMPLES, no_shrink=True)
for _label in EXCLUDED:
    _method, _path = _label.split(" ", 1)
    schema = schema.exclude(method=_method, path=_path)


@pytest.fixture(scope="module")
def identities() -> Iterator[dict[str, dict[str, str]]]:
    """Authorization headers of the demo's first admin and first grid worker, in a fresh
    database holding the demo city; the app's lifespan is stopped at the end."""
    _fresh_database(FUZZ_SETTINGS.db_name)
    load_demo(FUZZ_SETTINGS)
    found = {}
    with get_engine(FUZZ_SETTINGS).connect() as conn:
        for role in ("admin", "grid_worker"):
            user = (
                conn.execute(
                    text("SELECT * FROM app_user WHERE role = :r ORDER BY id LIMIT 1"), {"r": role}
                )
                .mappings()
                .one()
            )
            grant = sessions.issue_for(FUZZ_SETTINGS, dict(user))
            found[role] = {"Authorization": "Bearer " + grant.access_token}
    yield found
    shutdown_lifespans()


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    # generous: the first circles request refreshes every service circle (~20 s here)
    deadline=dt.timedelta(seconds=120),
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_every_answer_matches_the_schema(case: Any, identities: dict[str, dict[str, str]]) -> None:
    for headers in identities.values():
        case.call_and_validate(app=APP, headers=headers, checks=CHECKS)
