"""One Settings object, read once from the environment (prefix ``GIS_``).

``DATABASE_URL`` (without prefix, the usual convention) points everything at an
existing server; without it the project-local cluster under ``var_dir`` is used.
"""

from __future__ import annotations

import hashlib
from datetime import time
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def project_root() -> Path:
    """The checkout this package runs from (where pyproject.toml is), else the cwd."""
    here = Path(__file__).resolve().parent.parent
    return here if (here / "pyproject.toml").exists() else Path.cwd()


def default_port(var_dir: Path) -> int:
    digest = hashlib.sha1(str(var_dir.resolve()).encode()).digest()
    return 54330 + int.from_bytes(digest[:2], "big") % 600


class Settings(BaseSettings):
    # hide_input_in_errors: a failed check must not print the passwords and auth headers
    model_config = SettingsConfigDict(env_prefix="GIS_", extra="ignore", hide_input_in_errors=True)

    # May name several hosts in libpq's form, e.g. the Patroni cluster's
    # postgresql://gis@127.0.0.1:p1,127.0.0.1:p2/gis_service?target_session_attrs=read-write
    # (libpq §34.1.1.3: tried in order, the first that is read-write wins), so a failover
    # needs no configuration change (gis-service cluster up prints these; docs/scale.md).
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "GIS_DATABASE_URL")
    )
    # Where reads may go: the same form with target_session_attrs=prefer-standby (a standby
    # when one answers, else the primary). Unset: reads use database_url.
    read_database_url: str | None = None
    # Read-your-writes (db/replicas.py): after a write the client carries the primary's WAL
    # position for this many seconds (cookie and X-Min-LSN header); a read carrying it waits
    # up to this many milliseconds for a standby to replay that far, else reads the primary.
    read_your_writes_seconds: int = Field(default=30, gt=0)
    read_your_writes_wait_ms: int = Field(default=200, ge=0)
    # The first of the Patroni cluster's loopback ports (etcd, then PostgreSQL and REST
    # per node; db/patroni.py). Unset: derived from var_dir like db_port.
    cluster_port_base: int | None = None
    var_dir: Path = Field(default_factory=lambda: project_root() / ".var")
    # Derived from the checkout's path, so two checkouts on one machine never collide.
    db_port: int = Field(default_factory=lambda: default_port(project_root() / ".var"))
    db_name: str = "gis_service"
    db_user: str = "gis"
    db_pool_size: int = 8
    # While the database is unreachable every request answers 503 with Retry-After: this
    # many seconds (about what a PostgreSQL restart takes; api/handlers.py).
    db_retry_after_seconds: int = Field(default=5, ge=1)

    host: str = "127.0.0.1"
    port: int = 8000

    # Signs access tokens. Unset: a random key is made once and kept in var_dir/secret_key.
    secret_key: str | None = None
    # Sessions (auth/sessions.py; OWASP API2, ASVS V3, RFC 9700): an access token lives this
    # many seconds and is checked against its session and account on every request; the
    # phone renews it with its refresh token (rotated on each use), which works for this
    # many days after sign-in; a page's cookie sign-in lasts this many hours.
    access_token_seconds: int = Field(default=30 * 60, gt=0)
    refresh_token_days: float = Field(default=30.0, gt=0)
    page_session_hours: float = Field(default=10.0, gt=0)
    # The sign-in throttle (auth/throttle.py), kept in PostgreSQL for all workers: this many
    # failures for one username from one address in the window, or failures for this many
    # distinct usernames from one address in it (password spraying), answer 429.
    sign_in_max_failures: int = Field(default=5, gt=0)
    sign_in_max_usernames: int = Field(default=20, gt=0)
    sign_in_window_seconds: int = Field(default=15 * 60, gt=0)
    # Continuous WAL archiving into this directory for point-in-time recovery, applied by
    # every `gis-service db up` (backup/wal.py; PostgreSQL docs §26.3). Unset: the data
    # directory's own choice stands (`db up --archive-wal DIR` / `--no-archive-wal`).
    wal_archive_dir: Path | None = None
    # Case photos, content-addressed (sha256) with thumbnails.
    photo_dir: Path | None = None
    photo_max_bytes: int = 10 * 1024 * 1024
    # Local time for case numbers, day boundaries and weekly statistics.
    timezone: str = "Asia/Shanghai"
    # The largest request body accepted (api/guard.py, 413 beyond): JSON, forms and any
    # other media type; an import's file (multipart carries it, plus 1 MiB of fields).
    body_max_bytes: int = Field(default=1024**2, gt=0)
    import_max_bytes: int = Field(default=200 * 1024**2, gt=0)
    # A zipped import may unpack to at most this many bytes in at most this many files
    # (OWASP API4: a 2 MB zip can expand to gigabytes). Counted while extracting, so a zip
    # whose directory understates its sizes is stopped all the same.
    zip_max_bytes: int = Field(default=2 * 1024**3, gt=0)
    zip_max_members: int = Field(default=1000, gt=0)
    # Geometry from outside (imports, GeoJSON bodies; geo/bounds.py): per feature at most
    # this many vertices and parts (a Polygon is one part), per polygon this many rings
    # (exterior + holes), and in one import or request this many vertices in all. A real
    # district outline has 10^3-10^4 vertices; repair (make_valid) and QA unions grow
    # faster than linearly past these. A walking network (CLI import) may hold more.
    geometry_max_vertices: int = Field(default=100_000, gt=0)
    geometry_max_parts: int = Field(default=10_000, gt=0)
    geometry_max_rings: int = Field(default=10_000, gt=0)
    import_max_vertices: int = Field(default=1_000_000, gt=0)
    network_max_vertices: int = Field(default=10_000_000, gt=0)
    # The longest an analysis may compute for one request (access/bounds.py): siting is
    # refused up front past what fits (buildings x candidates), and stopped past this;
    # SQL of the reach / living-circle figures runs under SET LOCAL statement_timeout.
    analysis_max_seconds: float = Field(default=30.0, gt=0)
    # glibc malloc per worker process (memory.py, issue 14 item 7): the arenas the
    # request threads share (0: glibc's default, 8 per core) and how often the free pages
    # of the C heap go back to the system (seconds; 0: never).
    malloc_arena_max: int = Field(default=2, ge=0, le=64)
    malloc_trim_seconds: float = Field(default=60.0, ge=0)
    # A worker that does not answer the server's health ping this long is killed as hung
    # and replaced (uvicorn's timeout_worker_healthcheck; a dead worker is replaced at once).
    worker_healthcheck_seconds: int = Field(default=30, ge=1)
    # Siting's integer programme: building-candidate pairs within walking reach (175,000
    # solve in ~15 s on the demo city; 785,000 do not finish in a minute).
    siting_max_pairs: int = Field(default=300_000, gt=0)
    # An API import that takes longer than this answers 202 with a status URL.
    import_wait_seconds: float = 5.0
    # An outside raster basemap for the map pages instead of our own (e.g. a government
    # WMTS as an XYZ template "https://host/{z}/{x}/{y}.png"); its datum, since Chinese
    # vendors' tiles are GCJ-02 and our data WGS-84 (the pages warn of the offset).
    basemap_url: str | None = None
    basemap_coord_sys: str = "wgs84"
    # Vector tiles kept in memory per process (0: none, as when measuring uncached tiles).
    tile_cache_size: int = 4096
    # Browsers reach the service over HTTPS (a TLS proxy in front, docs/deploy.md): the
    # sign-in cookie is Secure and answers carry Strict-Transport-Security (api/security.py).
    https: bool = False
    # Case tiles may show the cases as of this many seconds ago (one sync per second at
    # most, instead of one per tile).
    tile_freshness_seconds: float = 1.0
    # The statistics cube and the case tiles hold the cases reported in this many recent
    # days (and every open case); settled cases of older days are counted from daily
    # roll-ups in PostgreSQL (stats/rollup.py), so a process's memory stays bounded.
    stats_recent_days: int = Field(default=90, ge=1)
    # Possible duplicates of a report: open cases of its category within this many metres
    # reported in the last this many days. The one place both the report's answer and
    # GET /api/v1/cases/nearby take them from (cases/report.sql: nearby_cases()).
    duplicate_radius_m: float = Field(default=50.0, gt=0, le=500)
    duplicate_window_days: int = Field(default=7, gt=0)
    # ... and at most this many of them, the nearest, travel in an answer, with the count of
    # all (OWASP API4: one busy spot made every report's answer carry hundreds, 1.6 MB).
    duplicate_list_max: int = Field(default=5, ge=1, le=100)
    # The clock on an approval (a deadline extension waiting for the level above): it is
    # due this many hours after the request (cases/approvals.py; GET /api/v1/approvals).
    approval_due_hours: float = Field(default=24.0, gt=0, le=24 * 30)
    # The desk's "near the deadline" tab (临期): running cases with less than this share of
    # their deadline's span (acceptance to deadline) left (cases/desk.py).
    desk_near_deadline_share: float = Field(default=0.25, gt=0, lt=1)
    # The case lock (cases/locks.py): a dispatcher's claim on a case lasts this many
    # seconds unless renewed (the case page renews it while open); then it is free.
    case_lock_seconds: int = Field(default=120, ge=5, le=3600)
    # --- Notifications: the sender `gis-service notify run` and webhooks (gis_service/notify/)
    # Idle wait between the sender's loops, and how many outbox rows / deliveries one loop
    # claims; deliveries of one loop go out over this many threads.
    notify_poll_seconds: float = Field(default=0.5, gt=0, le=60)
    notify_batch: int = Field(default=200, ge=1, le=10_000)
    notify_workers: int = Field(default=8, ge=1, le=64)
    # Retries: the n-th failed try waits base * 2**(n-1) seconds, at most cap; after
    # max_attempts tries (or a non-retryable error) the delivery is dead (dead letters).
    notify_retry_base_seconds: float = Field(default=10.0, ge=0, le=3600)
    notify_retry_cap_seconds: float = Field(default=3600.0, ge=0, le=7 * 86400)
    notify_max_attempts: int = Field(default=8, ge=1, le=100)
    # A delivery left "sending" this long was cut off by a crash: it is tried again, with
    # the same delivery id (the receiver recognises the retry).
    notify_sending_lease_seconds: float = Field(default=120.0, gt=0, le=86400)
    # Near-deadline reminders (即将到期): one per case when each of these shares of the
    # deadline's span (acceptance to deadline) has elapsed; empty/None: 1 minus the desk's
    # near-deadline share, so the reminder and the desk's 临期 tab agree.
    notify_reminder_shares: tuple[float, ...] | None = None
    # How often the scheduler looks for due reminders, and how far back: a threshold
    # crossed longer ago than this when it first looks (a history load) is not sent.
    notify_schedule_seconds: float = Field(default=30.0, gt=0, le=3600)
    notify_reminder_lookback_hours: float = Field(default=24.0, gt=0, le=24 * 30)
    # A rating (1..5) at or below this is a bad one (差评): the dispatchers and team hear.
    notify_bad_rating_max: int = Field(default=2, ge=1, le=4)
    # Quiet hours (service time, GIS_TIMEZONE) for people who have not set their own: a
    # non-urgent SMS waits for their end. Equal: none.
    notify_quiet_start: time = time(22, 0)
    notify_quiet_end: time = time(7, 0)
    # A webhook POST that has not answered in this many seconds failed (retryable).
    notify_webhook_timeout_seconds: float = Field(default=5.0, gt=0, le=120)
    # --- Notifications: retention (notify/sender.py prune). Done outbox rows and sent
    # deliveries older than this many days are deleted by the sender (the inbox is kept);
    # dead letters stay until retried, or this longer; every notify_prune_seconds, in
    # batches of notify_prune_batch rows (one short transaction each).
    notify_retention_days: float = Field(default=30.0, gt=0, le=3650)
    notify_dead_retention_days: float = Field(default=180.0, gt=0, le=3650)
    notify_prune_seconds: float = Field(default=3600.0, gt=0, le=7 * 86400)
    notify_prune_batch: int = Field(default=5000, ge=1, le=100_000)
    # Children may stick out of their parent by this many square metres before QA warns.
    qa_area_tolerance_m2: float = 1.0

    # --- Notification channels: e-mail over SMTP and the SMS gateway ------------------
    # (gis_service/notify/channels/email.py and sms.py; docs/notifications.md "Channels").
    # Checked at start (check_notify_channels below): a bad value stops the service with
    # the setting's name instead of failing every delivery later.
    smtp_host: str | None = Field(
        default=None, description="The SMTP server e-mail goes through; unset: no e-mail."
    )
    smtp_port: int = Field(
        default=587,
        ge=1,
        le=65535,
        description="Its port: 587 submission with STARTTLS, 465 implicit TLS, 25 relay.",
    )
    smtp_user: str | None = Field(
        default=None, description="AUTH user name (only over TLS); unset: no login."
    )
    smtp_password: SecretStr | None = Field(default=None, description="AUTH password.")
    smtp_from: str | None = Field(
        default=None,
        description='The sender, "local@domain" or "Name <local@domain>"; its domain '
        "ends each Message-ID. Required with smtp_host.",
    )
    smtp_starttls: bool = Field(
        default=True, description="Upgrade the connection with STARTTLS (RFC 3207)."
    )
    smtp_implicit_tls: bool = Field(
        default=False,
        description="Speak TLS from the first byte (RFC 8314 §3, port 465) instead.",
    )
    smtp_ca_file: Path | None = Field(
        default=None,
        description="PEM certificate authorities the server's certificate is checked "
        "against instead of the system's (a district's private CA).",
    )
    smtp_timeout_seconds: float = Field(
        default=30.0, gt=0, description="Timeout of the connection and of each command."
    )
    sms_url: str | None = Field(
        default=None, description="The SMS gateway's http(s) URL; unset: no SMS."
    )
    sms_method: Literal["POST", "GET"] = Field(
        default="POST", description="POST (the template is the body) or GET (the query)."
    )
    sms_content_type: Literal["application/json", "application/x-www-form-urlencoded"] = Field(
        default="application/json", description="The media type of a POST body."
    )
    sms_body_template: str = Field(
        default='{"phone": "{phone}", "text": "{text}", "id": "{delivery_id}"}',
        description="A JSON document (POST, application/json) or a query string "
        "name=value&... (form body, or GET query) with {phone}, {text}, {delivery_id}, "
        "{event_id}, {kind}, {created_at} inside values; {phone} and {text} required.",
    )
    sms_auth_header: SecretStr | None = Field(
        default=None, description='One header sent with every call, "Name: value".'
    )
    sms_timeout_seconds: float = Field(
        default=10.0, gt=0, description="Timeout of the gateway call (connect, each read)."
    )
    sms_max_segments: int = Field(
        default=3,
        ge=1,
        le=10,
        description="Longer text is cut to this many SMS segments (67 Chinese characters "
        "each, 70 in a single SMS; 3GPP TS 23.038).",
    )

    @field_validator("sms_method", mode="before")
    @classmethod
    def _method_upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def check_notify_channels(self) -> Settings:
        """The SMTP and SMS settings fit together; ValueError naming the setting if not."""
        from urllib.parse import urlsplit

        from gis_service.notify.channels import email, sms

        def bad(name: str, why: str) -> ValueError:
            return ValueError(f"GIS_{name.upper()} ({name}): {why}")

        if self.smtp_host:
            if not self.smtp_from:
                raise bad("smtp_from", "required when smtp_host is set")
            if self.smtp_starttls and self.smtp_implicit_tls:
                raise bad("smtp_implicit_tls", "choose it or smtp_starttls, not both")
            if self.smtp_user and not (self.smtp_starttls or self.smtp_implicit_tls):
                raise bad("smtp_user", "a login needs smtp_starttls or smtp_implicit_tls")
            if self.smtp_ca_file and not self.smtp_ca_file.is_file():
                raise bad("smtp_ca_file", f"no such file {self.smtp_ca_file}")
        if self.smtp_from:
            try:
                email.mailbox(self.smtp_from)
            except ValueError as exc:
                raise bad("smtp_from", str(exc)) from None
        if self.sms_url is not None:
            url = urlsplit(self.sms_url)
            if url.scheme not in ("http", "https") or not url.hostname:
                raise bad("sms_url", f"not an http(s) URL: {self.sms_url!r}")
        try:
            sms.parse_template(self.sms_body_template, self.sms_method, self.sms_content_type)
        except ValueError as exc:
            raise bad("sms_body_template", str(exc)) from None
        if self.sms_auth_header is not None:
            try:
                sms.parse_auth_header(self.sms_auth_header.get_secret_value())
            except ValueError as exc:
                raise bad("sms_auth_header", str(exc)) from None
        return self

    # --- exports (gis_service/exports/) ---
    # An export of more rows than this runs as a job: the API answers 202 with its status
    # URL and a download link once written (exports/jobs.py). 10,000 cases take ~1 s as
    # CSV and ~5 s as XLSX (benchmarks/export.py): longer than that, a job shows progress.
    export_job_rows: int = Field(default=10_000, ge=0)
    # A job's file is kept under var_dir/exports for this many hours, then removed.
    export_ttl_hours: float = Field(default=24.0, gt=0)

    # --- grid walks (gis_service/walks/, docs/walks.md) ---
    # The due list (GET /api/v1/grids/{code}/due-buildings): buildings no walk passed in
    # this many days; a district may set its own ({"410105": 14}, JSON in the variable).
    walk_due_days: int = Field(default=7, ge=0, le=3650)
    walk_due_days_by_district: dict[str, int] = Field(default_factory=dict)
    # Raw positions are kept this many days after a walk ends, then reduced to the
    # cleaned track and the daily figures (`gis-service walks prune`).
    walk_raw_retention_days: int = Field(default=90, ge=0)

    @property
    def photos_path(self) -> Path:
        return self.photo_dir or self.var_dir / "photos"

    def signing_key(self) -> str:
        """The token signing key: configured, or made once per checkout and kept."""
        if self.secret_key:
            return self.secret_key
        path = self.var_dir / "secret_key"
        if not path.exists():
            import secrets

            self.var_dir.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(secrets.token_urlsafe(48))
        return path.read_text().strip()

    @property
    def local_database_url(self) -> str:
        return f"postgresql+psycopg2://{self.db_user}@127.0.0.1:{self.db_port}/{self.db_name}"

    @property
    def sqlalchemy_url(self) -> str:
        return to_sqlalchemy_url(self.database_url or self.local_database_url)

    @property
    def libpq_url(self) -> str:
        """The database URL as libpq and asyncpg read it (several hosts stay
        comma-separated in the authority)."""
        return to_libpq_url(self.database_url or self.local_database_url)

    @property
    def read_sqlalchemy_url(self) -> str:
        """Where reads that may lag go (read_database_url, else the writes' URL)."""
        return (
            to_sqlalchemy_url(self.read_database_url)
            if self.read_database_url
            else self.sqlalchemy_url
        )


def to_libpq_url(url: str) -> str:
    """``postgres://`` and ``postgresql+psycopg2://`` as plain ``postgresql://``."""
    for prefix in ("postgres://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            url = "postgresql://" + url[len(prefix) :]
    return url


def to_sqlalchemy_url(url: str) -> str:
    """A libpq URL as SQLAlchemy's psycopg2 dialect takes it. Several hosts
    (``user@h1:p1,h2:p2/db``) become SQLAlchemy's ``user@/db?host=h1:p1&host=h2:p2``, which
    its dialect hands to libpq as host=h1,h2 port=p1,p2; one host is left as it is."""
    from urllib.parse import urlsplit, urlunsplit

    url = to_libpq_url(url)
    parts = urlsplit(url)
    userinfo, _, hosts = parts.netloc.rpartition("@")
    if "," in hosts:
        query = "&".join([*(f"host={h}" for h in hosts.split(",")), *filter(None, [parts.query])])
        netloc = f"{userinfo}@" if userinfo else ""
        url = urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    return "postgresql+psycopg2://" + url[len("postgresql://") :]


@lru_cache
def get_settings() -> Settings:
    return Settings()
