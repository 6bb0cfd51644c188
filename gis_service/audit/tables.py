"""Which tables hold privileged data and how a change to each is recorded: the one list.

The audit triggers are made from :data:`AUDITED` on every ``gis-service db migrate``
(triggers.py), and ``tests/test_audit.py`` checks that every table of the schema is either
here or in :data:`NOT_AUDITED` with the reason, and that every table here has its trigger:
a table added later cannot be forgotten silently.

Three ways of recording (docs/audit.md):

* **row** — one audit row per changed row, with its values before and after (jsonb; a
  geometry as GeoJSON). An UPDATE that changes nothing but bookkeeping columns
  (``ignore``) is not recorded, so re-loading the same data leaves no trace.
* **watched columns** (``columns``, UPDATE only) — the cases: only a re-classification
  (``category_code``) and a change of a deadline already set (``deadline_at``) are
  privileged; the workflow's own steps (setting the deadline on acceptance included) are
  the case timeline's (case_event).
* **bulk** — tables an import rewrites by the hundred thousand (boundaries down to
  buildings, the walking network): one summary row per statement (how many rows, and the
  keys of the first :data:`BULK_KEYS`), not a copy of every geometry; the import itself is
  also recorded (``import_run``) with its file, parameters and QA report.

Secrets never enter the log: the columns in ``redact`` are written as ``"[redacted]"``
(NULL stays NULL), and a change to one is still visible in ``changed``.
"""

from __future__ import annotations

from dataclasses import dataclass

#: the word written in place of a redacted value
REDACTED = "[redacted]"
#: keys a bulk summary lists at most (the row count is always complete)
BULK_KEYS = 1000


@dataclass(frozen=True)
class Audited:
    """How changes to ``table`` are recorded. ``kind`` is the word the log is filtered by
    (``GET /api/v1/audit?kind=users``); ``key`` the column naming a row (the ``target``)."""

    table: str
    kind: str
    key: str
    redact: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    columns: tuple[str, ...] = ()
    bulk: bool = False


AUDITED: tuple[Audited, ...] = (
    # accounts, their roles and scopes (app_user.scopes), activation and passwords
    Audited("app_user", "users", "username", redact=("password_hash",)),
    Audited("team", "teams", "id"),
    Audited("case_category", "categories", "code"),
    # reply and reason templates per category (cases/templates.py): staff's ready texts
    Audited("case_template", "categories", "id"),
    # Open311 client apps and their api_keys (only a hash is stored; it is redacted too)
    Audited("open311_client", "keys", "name", redact=("key_hash",)),
    Audited("import_run", "imports", "id"),
    Audited("service_point", "service_points", "id", ignore=("updated_at", "import_id")),
    Audited("service_kind", "service_points", "code"),
    Audited("living_category", "service_points", "code"),
    Audited("cases", "cases", "case_no", columns=("category_code", "deadline_at")),
    Audited("admin_unit", "units", "code", bulk=True),
    # rosters: people's names and phones, a few per unit: every row
    Audited("unit_staff", "units", "id"),
    Audited("walk_edge", "network", "id", bulk=True),
    Audited("walk_node", "network", "id", bulk=True),
    # who may decide another supervisor's approvals, and for how long (cases/approvals.py)
    Audited("approval_delegation", "approvals", "id"),
    # other systems that receive case notifications, and their signing secrets (redacted)
    Audited("webhook_subscription", "webhooks", "name", redact=("secret",)),
)
BY_TABLE: dict[str, Audited] = {a.table: a for a in AUDITED}
#: the filter words, in the list's order
KINDS: tuple[str, ...] = tuple(dict.fromkeys(a.kind for a in AUDITED))

#: tables that are not audited, each with the reason
NOT_AUDITED: dict[str, str] = {
    "audit_log": "the log itself (append-only)",
    "case_event": "the case timeline: append-only evidence of every workflow step",
    "case_photo": "evidence attached to a case; uploads and publishing are timeline events",
    "case_idempotency": "the senders' retry keys of reports (cases/report.sql), written with "
    "the case, whose insert is audited",
    "access_state": "cache versions, bumped by triggers",
    "service_circle": "a cache of walking areas, recomputed from the service points",
    "circle_union": "a cache of unions of walking areas",
    "building_access": "a cache of walking distances per building",
    "alembic_version": "the schema revision, changed by migrations",
    "approval": "extension requests and their decisions: each is also an event on its "
    "case's timeline (case_event), and a granted extension's new deadline is audited on cases",
    "auth_session": "sign-in sessions (auth/sessions.py); ending them follows an audited "
    "change of the account, or is the user's own sign-out",
    "refresh_token": "hashes of rotating refresh tokens, one per renewal of a session",
    "sign_in_failure": "the sign-in throttle's counter of failed attempts, pruned by age",
    "spatial_ref_sys": "PostGIS reference data",
    "saved_search": "a desk user's own named views of the case queue (a URL query string): "
    "it grants nothing and shows nothing the queue would not; only its owner reads or "
    "deletes it",
    "monthly_report": "versions of the monthly reports (reports/versions.py): append-only "
    "evidence themselves — each keeps who made and sent it and when, a sent version is "
    "frozen by a trigger, and a correction is a new version with its reason",
    "notify_outbox": "the queue of case events and reminders to fan out (notify/); each "
    "row is a copy of a timeline event's id or a reminder's, done once fanned out",
    "notification": "the in-app inbox: what the rules (notify/rules.py) told each person "
    "about the timeline's events; the person's own read marks",
    "notify_delivery": "copies of notifications on their way through e-mail, SMS and "
    "webhooks, with their tries and errors (the dead-letter list)",
    "notify_preference": "a person's own choice of channels per notification kind",
    "notify_quiet_hours": "a person's own quiet hours for SMS",
    "notify_reminder": "the deadline reminders sent, one per case, kind, threshold and "
    "deadline: derived from the cases by the scheduler",
    "notify_heartbeat": "the notification sender's liveness row, rewritten every loop",
    "case_lock": "a dispatcher's short-lived claim on a case while working on it "
    "(cases/locks.py); what they then do is on the case's timeline (case_event)",
    "walk": "a grid worker's own record of a walk (gis_service/walks/): started and ended "
    "by the walker, its track and figures derived from the positions; no privilege changes",
    "walk_chunk": "the chunks of positions a phone uploaded, kept to recognise retries",
    "walk_point": "raw positions of walks, append-only, pruned after the retention period",
    "walk_visit": "buildings a walk passed, derived from its track (walks/walks.sql)",
    "walk_day": "daily walk figures per grid and worker, derived from the walks",
    "export_job": "a large export written in the background (exports/jobs.py): it changes "
    "no data and its file holds only what its owner may read directly",
    "case_rollup": "sums of the statistics of old settled cases per tier (day or week, unit "
    "code depth, category or all), unit and category (stats/rollup.py), derived from the "
    "cases by a trigger and the daily fold",
    "case_rollup_tier": "the grains the roll-up keeps, written by its migration",
    "case_rollup_state": "the roll-up's fold boundary and zone, moved by the daily fold",
}


def tables_of(kind: str) -> list[str]:
    """The tables a filter word covers."""
    return [a.table for a in AUDITED if a.kind == kind]
