"""Versions of a monthly report: drafts, sending (freezing), corrections and their diffs,
the stored PDF and the drill-down from a figure to its cases.

Rules:

* Who: supervisors and admins whose jurisdiction covers the unit (auth/scope.py
  ``covers_unit``); a version of a unit outside it is answered 404, a new report for one
  403.
* A draft holds the figures as computed (figures.py), the case ids behind each, and its
  PDF. Versions are numbered 1, 2, … per unit and month.
* Sending freezes a draft: its figures stay as they were computed; the PDF is printed
  once more from those frozen figures with the sender, the time, the reason and the
  changes since the previous sent version, and those bytes are kept. From then on the row
  cannot change (the database refuses: migration 0013's trigger), and ``GET …/pdf``
  answers exactly the bytes sent (``pdf_sha256``).
* A version sent after another one of the same unit and month is a correction: it needs
  a reason, and shows what changed (``diff``: per unit and figure, old → new).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import date
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from gis_service.auth.principal import Principal, Role
from gis_service.auth.scope import case_filter, covers_unit, require_role
from gis_service.errors import Conflict, Forbidden, InvalidInput, NotFound
from gis_service.reports import figures as figures_mod
from gis_service.reports import page, pdf
from gis_service.reports.figures import SHOWN
from gis_service.settings import Settings
from gis_service.stats.cube import CaseCube
from gis_service.stats.resolution import CASE_FIGURES, RATE_PARTS
from gis_service.timezone import local_iso, local_text

#: SQLSTATE of the trigger that keeps a sent version frozen (migration 0013)
FROZEN = "GSRPT"
LANGS = ("zh", "en")
#: the columns a version's description reads (not the figures, ids or PDF)
META = """r.id, r.unit_code, r.month, r.version, r.status, r.lang, r.created_by,
          r.created_by_name, r.created_at, r.sent_by, r.sent_by_name, r.sent_at,
          r.reason, r.previous_id, r.pdf_sha256, length(r.pdf) AS pdf_bytes"""


def check_reader(p: Principal, unit: str) -> None:
    """403 unless ``p`` is a supervisor or admin whose jurisdiction covers ``unit``."""
    require_role(p, Role.supervisor, Role.admin, what="monthly reports")
    if not covers_unit(p, unit):
        raise Forbidden(f"unit {unit} lies outside your jurisdiction")


def author(p: Principal) -> str:
    return p.display_name or p.username or p.role.value


def create_draft(
    conn: Connection,
    cube: CaseCube,
    principal: Principal,
    settings: Settings,
    unit: str,
    month: str,
    lang: str = "zh",
    reason: str | None = None,
    progress: Callable[[str], None] = lambda _s: None,
) -> dict[str, Any]:
    """Compute the figures, print the PDF and store a new draft version (in ``conn``'s
    transaction). Errors: InvalidInput (month, unit, lang, reason), NotFound (unit),
    Forbidden (jurisdiction)."""
    if lang not in LANGS:
        raise InvalidInput(f"lang must be one of {', '.join(LANGS)}", field="lang")
    reason = _reason(reason)
    first = figures_mod.parse_month(month)
    figures_mod.unit_of(conn, unit)
    check_reader(principal, unit)
    figures, ids = figures_mod.compute(conn, cube, principal, settings, unit, month, progress)
    _lock(conn, unit, first)
    number = conn.execute(
        text(
            "SELECT coalesce(max(version), 0) + 1 FROM monthly_report "
            "WHERE unit_code = :u AND month = :m"
        ),
        {"u": unit, "m": first},
    ).scalar_one()
    previous = _last_sent(conn, unit, first)
    made = {
        "version": number,
        "status": "draft",
        "created_by": author(principal),
        "created_at": local_text(_now(conn), settings),
        "reason": reason,
    }
    progress("printing the PDF")
    body = _print(figures, made, lang, previous)
    row_id = conn.execute(
        text(
            """
            INSERT INTO monthly_report (unit_code, month, version, lang, created_by,
                created_by_name, figures, case_ids, pdf, pdf_sha256, reason, previous_id)
            VALUES (:u, :m, :v, :lang, :by, :by_name, CAST(:figures AS jsonb),
                    CAST(:ids AS jsonb), :pdf, :sha, :reason, :prev)
            RETURNING id
            """
        ),
        {
            "u": unit,
            "m": first,
            "v": number,
            "lang": lang,
            "by": principal.user_id,
            "by_name": made["created_by"],
            "figures": json.dumps(figures, ensure_ascii=False),
            "ids": json.dumps(ids),
            "pdf": body,
            "sha": hashlib.sha256(body).hexdigest(),
            "reason": reason,
            "prev": previous["id"] if previous else None,
        },
    ).scalar_one()
    return get_version(conn, principal, settings, row_id)


def send(
    conn: Connection,
    principal: Principal,
    settings: Settings,
    version_id: int,
    reason: str | None = None,
) -> dict[str, Any]:
    """Freeze a draft as sent (see the module). Errors: NotFound, Conflict (already
    sent), InvalidInput (a correction without a reason)."""
    row = _row(conn, principal, version_id, lock=True)
    if row["status"] == "sent":
        raise Conflict(
            f"version {row['version']} was sent already and is frozen; make a new version "
            "to correct it",
            allowed=[],
        )
    _lock(conn, row["unit_code"], row["month"])
    previous = _last_sent(conn, row["unit_code"], row["month"])
    reason = _reason(reason) or row["reason"]
    if previous is not None and not reason:
        raise InvalidInput(
            f"version {previous['version']} of {row['unit_code']} "
            f"{row['month']:%Y-%m} was sent already: a corrected version needs a reason",
            field="reason",
        )
    now = _now(conn)
    made = {
        "version": row["version"],
        "status": "sent",
        "created_by": row["created_by_name"],
        "created_at": local_text(row["created_at"], settings),
        "sent_by": author(principal),
        "sent_at": local_text(now, settings),
        "reason": reason,
    }
    body = _print(row["figures"], made, row["lang"], previous)
    try:
        conn.execute(
            text(
                """
                UPDATE monthly_report
                   SET status = 'sent', sent_by = :by, sent_by_name = :by_name, sent_at = :at,
                       pdf = :pdf, pdf_sha256 = :sha, reason = :reason, previous_id = :prev
                 WHERE id = :id
                """
            ),
            {
                "id": version_id,
                "by": principal.user_id,
                "by_name": made["sent_by"],
                "at": now,
                "pdf": body,
                "sha": hashlib.sha256(body).hexdigest(),
                "reason": reason,
                "prev": previous["id"] if previous else None,
            },
        )
    except DBAPIError as exc:
        if getattr(exc.orig, "pgcode", None) == FROZEN:
            raise Conflict(str(exc.orig).splitlines()[0], allowed=[]) from None
        raise
    return get_version(conn, principal, settings, version_id)


def list_versions(
    conn: Connection, principal: Principal, settings: Settings, unit: str, month: str | None
) -> list[dict[str, Any]]:
    """The versions of ``unit`` (and ``month``, if given), newest month and version
    first. Errors: Forbidden (jurisdiction), InvalidInput (month)."""
    check_reader(principal, unit)
    where, params = "r.unit_code = :u", {"u": unit}
    if month:
        where += " AND r.month = :m"
        params["m"] = figures_mod.parse_month(month)
    rows = conn.execute(
        text(
            f"SELECT {META}, u.name AS unit_name FROM monthly_report r "
            f"LEFT JOIN admin_unit u ON u.code = r.unit_code WHERE {where} "
            "ORDER BY r.month DESC, r.version DESC"
        ),
        params,
    ).mappings()
    return [_describe(dict(r), settings) for r in rows]


def get_version(
    conn: Connection, principal: Principal, settings: Settings, version_id: int
) -> dict[str, Any]:
    """A version: its facts, frozen figures and the changes since the previous sent
    version (``changes``, None for a first version). NotFound outside the jurisdiction."""
    row = _row(conn, principal, version_id)
    out = _describe(row, settings)
    out["figures"] = row["figures"]
    previous = _previous_of(conn, row)
    out["changes"] = diff(previous["figures"], row["figures"]) if previous else None
    return out


def pdf_of(conn: Connection, principal: Principal, version_id: int) -> tuple[bytes, str, str]:
    """The stored PDF (exactly as made, or as sent), its SHA-256 and a file name."""
    row = _row(conn, principal, version_id)
    body = conn.execute(
        text("SELECT pdf FROM monthly_report WHERE id = :id"), {"id": version_id}
    ).scalar_one()
    name = f"monthly-{row['unit_code']}-{row['month']:%Y-%m}-v{row['version']}.pdf"
    return bytes(body), row["pdf_sha256"], name


def changes_of(conn: Connection, principal: Principal, version_id: int) -> dict[str, Any]:
    """What changed between the previous sent version and this one."""
    row = _row(conn, principal, version_id)
    previous = _previous_of(conn, row)
    return {
        "id": row["id"],
        "version": row["version"],
        "previous_id": previous["id"] if previous else None,
        "previous_version": previous["version"] if previous else None,
        "reason": row["reason"],
        "changes": diff(previous["figures"], row["figures"]) if previous else [],
    }


def figure_cases(
    conn: Connection,
    principal: Principal,
    version_id: int,
    key: str,
    limit: int = 1000,
    offset: int = 0,
) -> dict[str, Any]:
    """The cases behind one figure of a version (its frozen ids; ``count`` all of them,
    ``case_ids`` the page ``offset`` … ``offset + limit``) and the page's summaries as
    the cases stand now, within the viewer's scope. A rate's key gives its numerator's
    cases and names its numerator and denominator keys (``parts``). NotFound for an
    unknown key."""
    row = _row(conn, principal, version_id)
    parts = None
    base, _, figure = key.rpartition(".")
    if figure in RATE_PARTS and base:
        num, den = RATE_PARTS[figure]
        parts = {"numerator": f"{base}.{num}", "denominator": f"{base}.{den}"}
    lookup = parts["numerator"] if parts else key
    # only the key's list leaves the database (a district's year holds millions of ids)
    ids = conn.execute(
        text("SELECT case_ids -> :k FROM monthly_report WHERE id = :id"),
        {"id": version_id, "k": lookup},
    ).scalar_one()
    if ids is None:
        raise NotFound(
            f"version {row['version']} has no figure {key!r}; keys look like totals.closed, "
            f"table.<unit>.<figure>, trend.<YYYY-MM>.<figure>, overdue, rework, "
            f"satisfaction.<1-5> (figures: {', '.join(CASE_FIGURES)})",
            field="key",
        )
    cond, params = case_filter(principal, "c")
    summaries = conn.execute(
        text(
            f"SELECT case_summary(c) FROM cases c WHERE c.id = ANY(:ids) AND {cond} ORDER BY c.id"
        ),
        {**params, "ids": ids[offset : offset + limit]},
    ).scalars()
    return {
        "version_id": row["id"],
        "key": key,
        "parts": parts,
        "count": len(ids),
        "offset": offset,
        "case_ids": ids[offset : offset + limit],
        "cases": list(summaries),
    }


def diff(old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, Any]]:
    """Figures that differ between two versions' figures: per unit of the table, the
    unit's total and the mean score, ``{"key", "unit", "name", "figure", "old", "new"}``
    (``key`` the drill-down key; a unit only in one version has None on the other side)."""
    out: list[dict[str, Any]] = []
    old_rows = {u["code"]: u for u in old["table"]}
    new_rows = {u["code"]: u for u in new["table"]}
    for code in sorted(old_rows.keys() | new_rows.keys()):
        a, b = old_rows.get(code, {}), new_rows.get(code, {})
        name = b.get("name") or a.get("name") or code
        for f in SHOWN:
            if a.get(f) != b.get(f):
                out.append(_change(f"table.{code}.{f}", code, name, f, a.get(f), b.get(f)))
    unit = new["unit"]
    for f in SHOWN:
        a, b = old["totals"].get(f), new["totals"].get(f)
        if a != b:
            out.append(_change(f"totals.{f}", unit["code"], unit["name"], f, a, b))
    a, b = old["satisfaction"]["mean"], new["satisfaction"]["mean"]
    if a != b:
        out.append(_change("satisfaction", unit["code"], unit["name"], "mean_score", a, b))
    return out


def _change(key: str, code: str, name: str, figure: str, old: Any, new: Any) -> dict[str, Any]:
    return {"key": key, "unit": code, "name": name, "figure": figure, "old": old, "new": new}


# --------------------------------------------------------------------------- helpers


def _print(
    figures: dict[str, Any], made: dict[str, Any], lang: str, previous: dict[str, Any] | None
) -> bytes:
    changes = diff(previous["figures"], figures) if previous else None
    html_page = page.render(figures, made, lang, changes)
    footer = f"{figures['unit']['name']} {figures['month']} v{made['version']}"
    return pdf.to_pdf(html_page, footer)


def _reason(reason: str | None) -> str | None:
    if reason is None or not reason.strip():
        return None
    if len(reason.strip()) > 2000:
        raise InvalidInput("reason is longer than 2000 characters", field="reason")
    return reason.strip()


def _lock(conn: Connection, unit: str, month: date) -> None:
    """One writer per unit and month at a time (numbers, the previous sent version)."""
    conn.execute(
        text("SELECT pg_advisory_xact_lock(hashtext('monthly_report:' || :k))"),
        {"k": f"{unit}:{month:%Y-%m}"},
    )


def _now(conn: Connection):
    return conn.execute(text("SELECT now()")).scalar_one()


def _last_sent(conn: Connection, unit: str, month: date) -> dict[str, Any] | None:
    row = (
        conn.execute(
            text(
                "SELECT id, version, figures FROM monthly_report WHERE unit_code = :u "
                "AND month = :m AND status = 'sent' ORDER BY version DESC LIMIT 1"
            ),
            {"u": unit, "m": month},
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None


def _previous_of(conn: Connection, row: dict[str, Any]) -> dict[str, Any] | None:
    if row["previous_id"] is None:
        return None
    found = (
        conn.execute(
            text("SELECT id, version, figures FROM monthly_report WHERE id = :id"),
            {"id": row["previous_id"]},
        )
        .mappings()
        .first()
    )
    return dict(found) if found else None


def _row(
    conn: Connection, principal: Principal, version_id: int, lock: bool = False
) -> dict[str, Any]:
    require_role(principal, Role.supervisor, Role.admin, what="monthly reports")
    row = (
        conn.execute(
            text(
                f"SELECT {META}, r.figures, u.name AS unit_name FROM monthly_report r "
                "LEFT JOIN admin_unit u ON u.code = r.unit_code WHERE r.id = :id"
                + (" FOR UPDATE OF r" if lock else "")
            ),
            {"id": version_id},
        )
        .mappings()
        .first()
    )
    if row is None or not covers_unit(principal, row["unit_code"]):
        raise NotFound(f"no monthly report version {version_id}")
    return dict(row)


def _describe(row: dict[str, Any], settings: Settings) -> dict[str, Any]:
    base = f"/api/v1/reports/monthly/{row['id']}"
    return {
        "id": row["id"],
        "unit": row["unit_code"],
        "unit_name": row.get("unit_name"),
        "month": f"{row['month']:%Y-%m}",
        "version": row["version"],
        "status": row["status"],
        "lang": row["lang"],
        "created_by": row["created_by_name"],
        "created_at": local_iso(row["created_at"], settings),
        "sent_by": row["sent_by_name"],
        "sent_at": local_iso(row["sent_at"], settings),
        "reason": row["reason"],
        "previous_id": row["previous_id"],
        "pdf_sha256": row["pdf_sha256"],
        "pdf_bytes": row["pdf_bytes"],
        "url": base,
        "pdf_url": f"{base}/pdf",
    }
