"""GeoReport v2 on top of the case loop: services are active sub-categories, service
requests are cases. Every read carries the reader's ``case_filter`` (a key's jurisdiction,
or without a key the public view of auth/scope.py, whose ``photo_filter`` and
``public_fields`` also decide the photo and the fields shown); reports go through the same
``report()`` as our own API, with source 'open311' and the client's id."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError
from sqlalchemy import Connection, text

from gis_service.auth.principal import Principal
from gis_service.auth.scope import (
    case_filter,
    event_filter,
    photo_filter,
    public_fields,
    public_view,
    require_case_reader,
)
from gis_service.cases import numbers, partitions, report
from gis_service.cases.workflow import CLOSED_STATUSES, OPEN_STATUSES, Status
from gis_service.db.engine import get_engine
from gis_service.errors import InvalidInput, NotFound
from gis_service.open311 import keys
from gis_service.settings import Settings
from gis_service.units.codes import LEVEL_NAMES_ZH, Level

MAX_REQUESTS = 1000
DEFAULT_DAYS = 90
# GeoReport v2 knows two statuses: every open status of the loop is "open" (a parked
# case, 挂账, too: it is still to be solved), every end state "closed" (a voided one, 作废,
# too). The lists are workflow.py's.
OPEN311_STATUSES = {"open": OPEN_STATUSES, "closed": CLOSED_STATUSES}
# Status notes for residents, per status of the vocabulary (cases/workflow.py).
STATUS_TEXT: dict[str, dict[Status, str]] = {
    "zh": {
        Status.reported: "已上报，待受理",
        Status.accepted: "已受理",
        Status.dispatched: "已派遣处置队伍",
        Status.in_progress: "处置中",
        Status.handled: "已处置，待核查",
        Status.parked: "暂缓处置（挂账），待复查",
        Status.closed: "已办结",
        Status.rejected: "不予受理",
        Status.duplicate: "重复上报",
        Status.voided: "已作废",
    },
    "en": {
        Status.reported: "Reported, awaiting acceptance",
        Status.accepted: "Accepted",
        Status.dispatched: "Dispatched to a team",
        Status.in_progress: "Being handled",
        Status.handled: "Handled, awaiting verification",
        Status.parked: "On hold until its review date",
        Status.closed: "Closed",
        Status.rejected: "Rejected",
        Status.duplicate: "Duplicate",
        Status.voided: "Voided",
    },
}
# Reporter fields of a POST that are kept with the case (attrs), not mapped to columns.
CONTACT_FIELDS = (
    "email",
    "first_name",
    "last_name",
    "phone",
    "device_id",
    "account_id",
    "address_id",
    "media_url",
)
MAX_FIELD_LENGTH = 500
# Our field names in validation messages, as the client knows them.
FIELD_NAMES = {
    "category": "service_code",
    "lon": "long",
    "lat": "lat",
    "description": "description",
    "address": "address_string",
}


def language(locale: str | None, accept_language: str | None) -> str:
    """English when asked for (locale=en…, or Accept-Language starting with en), else
    Chinese."""
    wanted = (locale or accept_language or "").strip().lower()
    return "en" if wanted.startswith("en") else "zh"


# --- services ---------------------------------------------------------------------------

SERVICE_SQL = """
    SELECT c.code, c.name_zh, c.name_en, c.deadline_hours, c.handling_level,
           d.name_zh AS group_zh, d.name_en AS group_en
      FROM case_category c JOIN case_category d ON d.code = c.parent_code
     WHERE c.parent_code IS NOT NULL AND c.active
"""


def list_services(conn: Connection, lang: str) -> list[dict[str, Any]]:
    rows = conn.execute(text(SERVICE_SQL + " ORDER BY d.sort, c.sort, c.code")).mappings()
    return [_service(r, lang) for r in rows]


def service_definition(conn: Connection, code: str) -> dict[str, Any]:
    """No service has extra attributes (metadata is false): the definition is empty."""
    row = conn.execute(text(SERVICE_SQL + " AND c.code = :code"), {"code": code}).first()
    if row is None:
        raise NotFound(f"no service with service_code {code!r}: see GET services")
    return {"service_code": code, "attributes": []}


def _service(r: Any, lang: str) -> dict[str, Any]:
    hours, level = r["deadline_hours"], Level(r["handling_level"])
    if lang == "en":
        description = (
            f"{r['group_en']} / {r['name_en']}: resolved within {hours} hours of "
            f"acceptance, usually handled at {level.value} level"
        )
    else:
        description = (
            f"{r['group_zh']} · {r['name_zh']}：受理后{hours}小时内办结，一般由"
            f"{LEVEL_NAMES_ZH[level]}处理"
        )
    return {
        "service_code": r["code"],
        "service_name": r[f"name_{lang}"],
        "description": description,
        "metadata": False,
        "type": "realtime",
        "keywords": ",".join(
            dict.fromkeys([r["name_zh"], r["name_en"], r["group_zh"], r["group_en"]])
        ),
        "group": r[f"group_{lang}"],
    }


# --- POST requests ----------------------------------------------------------------------


async def submit(
    settings: Settings, fields: dict[str, str], idempotency_key: str | None, lang: str
) -> tuple[dict[str, Any], bool]:
    """Report a case from the POST's fields; returns the response object and whether a new
    case was made (False: a retry with the same Idempotency-Key)."""

    def principal_for_key() -> Principal:
        with get_engine(settings).connect() as conn:
            return keys.principal_for_key(conn, fields.get("api_key"))

    principal = await run_in_threadpool(principal_for_key)
    payload = case_report(fields)
    reported = await report.report(
        settings, principal, payload, key=idempotency_key, source="open311"
    )
    result = reported.as_dict()
    case_no = result["case_no"]
    notice = (
        f"Received as case {case_no}; use it to follow the request."
        if lang == "en"
        else f"已收到，案件编号 {case_no}，可凭此编号查询办理进度。"
    )
    return (
        {
            "service_request_id": case_no,
            "token": case_no,
            "service_notice": notice,
            "account_id": None,
        },
        bool(result["created"]),
    )


def case_report(fields: dict[str, str]) -> report.CaseReport:
    """Our report from GeoReport's fields; 400 (InvalidInput) naming the field."""

    def get(name: str) -> str:
        return (fields.get(name) or "").strip()

    if not get("service_code"):
        raise InvalidInput("service_code is required: see GET services", field="service_code")
    if "." not in get("service_code"):
        # A domain is a category of ours but not a service: services are sub-categories.
        raise InvalidInput(
            f"unknown service_code {get('service_code')!r}: see GET /open311/v2/services.json",
            field="service_code",
        )
    if not get("lat") or not get("long"):
        if get("address_string") or get("address_id"):
            raise InvalidInput(
                "lat/long required: this server locates requests by "
                "coordinates (WGS-84), an address alone cannot be located",
                field="lat",
            )
        raise InvalidInput("lat/long required: WGS-84 coordinates of the problem", field="lat")
    try:
        lat, lon = float(get("lat")), float(get("long"))
    except ValueError:
        raise InvalidInput("lat and long must be decimal degrees (WGS-84)", field="lat") from None
    if not get("description"):
        raise InvalidInput("description is required: say what the problem is", field="description")
    attrs: dict[str, str] = {}
    for name in CONTACT_FIELDS:
        value = get(name)
        if len(value) > MAX_FIELD_LENGTH:
            raise InvalidInput(f"{name} is longer than {MAX_FIELD_LENGTH} characters", field=name)
        if value:
            attrs[name] = value
    media = attrs.get("media_url")
    if media and not media.lower().startswith(("http://", "https://")):
        raise InvalidInput("media_url must be an http(s) URL", field="media_url")
    try:
        return report.CaseReport(
            category=get("service_code"),
            lon=lon,
            lat=lat,
            description=get("description"),
            address=get("address_string") or None,
            attrs=attrs or None,
        )
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        field = FIELD_NAMES.get(str(first["loc"][0]), str(first["loc"][0]))
        raise InvalidInput(f"{field}: {first['msg']}", field=field) from None


def describe_error(exc: InvalidInput) -> str:
    """Messages of report_case() speak of our API; say it in GeoReport terms."""
    if exc.extra.get("field") == "category":
        return exc.message.replace("unknown category", "unknown service_code").replace(
            "GET /api/v1/categories", "GET /open311/v2/services.json"
        )
    return exc.message


# --- GET requests -----------------------------------------------------------------------


@dataclass
class RequestFilters:
    ids: list[str] | None = None
    service_codes: list[str] | None = None
    statuses: list[str] | None = None
    start: datetime | None = None
    end: datetime | None = None

    @classmethod
    def parse(cls, params: dict[str, str], tz: str) -> RequestFilters:
        ids = _items(params.get("service_request_id"))
        if ids:
            # "This overrides all other arguments" (GeoReport v2).
            return cls(ids=ids[:MAX_REQUESTS])
        statuses: list[str] = []
        for s in _items(params.get("status")):
            if s.lower() not in OPEN311_STATUSES:
                raise InvalidInput(f"unknown status {s!r}: open or closed", field="status")
            statuses += OPEN311_STATUSES[s.lower()]
        start = _datetime(params.get("start_date"), "start_date", tz)
        end = _datetime(params.get("end_date"), "end_date", tz)
        if start and end and start > end:
            raise InvalidInput("start_date is after end_date", field="start_date")
        if start is None and end is not None:
            start = end - timedelta(days=DEFAULT_DAYS)
        elif start is None:
            start = datetime.now(ZoneInfo(tz)) - timedelta(days=DEFAULT_DAYS)
        return cls(
            service_codes=_items(params.get("service_code")) or None,
            statuses=statuses or None,
            start=start,
            end=end,
        )

    def sql(self) -> tuple[list[str], dict[str, Any]]:
        where, p = [], {}
        if self.ids:
            # the numbers' months only (cases/numbers.py)
            sql, params = numbers.lookup_sql("c.id", "c.case_no", self.ids, prefix="f_ids")
            where.append(sql)
            p.update(params)
        if self.service_codes:
            where.append("c.category_code = ANY(:f_codes)")
            p["f_codes"] = self.service_codes
        if self.statuses:
            where.append("c.status = ANY(:f_status)")
            p["f_status"] = self.statuses
        if self.start:
            where.append("c.reported_at >= :f_start")
            p["f_start"] = self.start
        if self.end:
            where.append("c.reported_at <= :f_end")
            p["f_end"] = self.end
        if self.start or self.end:
            # the month partitions of the period only (cases/partitions.py)
            where.append(
                partitions.period_sql(
                    "c.id",
                    ":f_start" if self.start else None,
                    ":f_end" if self.end else None,
                    end_inclusive=True,
                )
            )
        return where, p


def _items(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def _datetime(value: str | None, name: str, tz: str) -> datetime | None:
    """A w3c datetime (2026-11-25T08:00:00+08:00, …Z); without an offset, local time."""
    if not value or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(
            f"{name} must be a w3c datetime such as 2026-11-25T08:00:00+08:00", field=name
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=ZoneInfo(tz))


REQUESTS_SQL = """
    SELECT c.id, c.case_no, case_status(c) AS status, c.category_code, cat.name_zh, cat.name_en,
           cat.deadline_hours, c.description, c.address,
           round(ST_X(c.geom)::numeric, 7)::float AS lon,
           round(ST_Y(c.geom)::numeric, 7)::float AS lat,
           c.reported_at, c.updated_at, c.deadline_at, c.attrs,
           t.name AS team_name, hu.name AS unit_name, dup.case_no AS duplicate_of_no,
           ev.note, ph.id AS photo_id
      FROM cases c
      JOIN case_category cat ON cat.code = c.category_code
      LEFT JOIN team t ON t.id = c.team_id
      LEFT JOIN admin_unit hu ON hu.code = unit_at_level(c.unit_code, c.handling_level)
      LEFT JOIN cases dup ON dup.id = c.duplicate_of AND dup.district_code = c.district_code
      LEFT JOIN LATERAL (
            SELECT e.note FROM case_event e
             WHERE e.case_id = c.id AND e.district_code = c.district_code
               AND e.note IS NOT NULL
               AND e.from_status IS DISTINCT FROM e.to_status AND {events}
             ORDER BY e.id DESC LIMIT 1) ev ON true
      LEFT JOIN LATERAL (
            SELECT p.id FROM case_photo p
             WHERE p.case_id = c.id AND p.district_code = c.district_code AND {photos}
             ORDER BY p.id LIMIT 1
           ) ph ON true
"""


def find_requests(
    conn: Connection,
    principal: Principal,
    filters: RequestFilters,
    *,
    lang: str,
    tz: str,
    base_url: str,
) -> list[dict[str, Any]]:
    """Service requests the reader may see, newest first, at most MAX_REQUESTS: a key's
    jurisdiction, or for the anonymous reader the public view (auth/scope.py)."""
    require_case_reader(principal, public_view_too=True)
    scope, params = case_filter(principal, "c")
    photos, pparams = photo_filter(principal, "p")
    events, eparams = event_filter(principal, "e")
    where, fparams = filters.sql()
    rows = conn.execute(
        text(
            f"{REQUESTS_SQL.format(photos=photos, events=events)} "
            f"WHERE {' AND '.join([scope, *where])} "
            "ORDER BY c.reported_at DESC, c.id DESC LIMIT :limit"
        ),
        {**params, **pparams, **eparams, **fparams, "limit": MAX_REQUESTS},
    ).mappings()
    return [
        to_request(public_fields(principal, r), lang=lang, tz=tz, base_url=base_url) for r in rows
    ]


def one_request(
    conn: Connection, principal: Principal, case_no: str, *, lang: str, tz: str, base_url: str
) -> dict[str, Any]:
    found = find_requests(
        conn, principal, RequestFilters(ids=[case_no]), lang=lang, tz=tz, base_url=base_url
    )
    if not found:
        raise NotFound(f"no service request {case_no} {_where(principal)}")
    return found[0]


def to_request(r: Any, *, lang: str, tz: str, base_url: str) -> dict[str, Any]:
    status = r["status"]
    words = STATUS_TEXT[lang]
    if status == Status.duplicate:
        notes = (
            f"Duplicate of service request {r['duplicate_of_no']}"
            if lang == "en"
            else f"重复上报，已并入案件 {r['duplicate_of_no']}"
        )
    elif r["note"]:
        notes = f"{words[status]}: {r['note']}" if lang == "en" else f"{words[status]}：{r['note']}"
    else:
        notes = words[status]
    hours = r["deadline_hours"]
    notice = (
        f"To be resolved within {hours} hours of acceptance"
        if lang == "en"
        else f"受理后{hours}小时内办结"
    )
    media = (
        f"{base_url}api/v1/cases/{r['id']}/photos/{r['photo_id']}"
        if r["photo_id"] is not None
        else (r["attrs"] or {}).get("media_url")
    )
    return {
        "service_request_id": r["case_no"],
        "status": "open" if status in OPEN_STATUSES else "closed",
        "status_notes": notes,
        "service_name": r[f"name_{lang}"],
        "service_code": r["category_code"],
        "description": r["description"],
        "agency_responsible": r["team_name"] or r["unit_name"],
        "service_notice": notice,
        "requested_datetime": _w3c(r["reported_at"], tz),
        "updated_datetime": _w3c(r["updated_at"], tz),
        "expected_datetime": _w3c(r["deadline_at"], tz),
        "address": r["address"],
        "address_id": None,
        "zipcode": None,
        "lat": r["lat"],
        "long": r["lon"],
        "media_url": media,
    }


def _w3c(value: datetime | None, tz: str) -> str | None:
    return value.astimezone(ZoneInfo(tz)).isoformat(timespec="seconds") if value else None


def token(conn: Connection, principal: Principal, token_value: str) -> dict[str, Any]:
    """Our cases are numbered at once, so a token is simply the case number."""
    require_case_reader(principal, public_view_too=True)
    scope, params = case_filter(principal, "c")
    number, nparams = numbers.lookup_sql("c.id", "c.case_no", [token_value], prefix="t")
    case_no = conn.execute(
        text(f"SELECT c.case_no FROM cases c WHERE {number} AND {scope}"),
        {**params, **nparams},
    ).scalar()
    if case_no is None:
        raise NotFound(f"no service request for token {token_value} {_where(principal)}")
    return {"service_request_id": case_no, "token": token_value}


def _where(principal: Principal) -> str:
    return "in the public view" if public_view(principal) else "in this api_key's jurisdiction"
