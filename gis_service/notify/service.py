"""The service functions of the notification API (notify/routes.py): a person's inbox and
preferences, the admin's dead letters and webhook subscriptions. The SQL lives here;
the routes stay thin. Errors are gis_service/errors.py's (404 naming the id, 422 naming
the field, 409 for a name taken)."""

from __future__ import annotations

import secrets
from datetime import time
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.exc import IntegrityError

from gis_service.auth.principal import Principal
from gis_service.errors import Conflict, Forbidden, InvalidInput, NotFound
from gis_service.notify.channels import CHANNELS
from gis_service.notify.kinds import (
    CHANNEL_ADDRESS,
    CHANNEL_MISSING,
    DEFAULT_ON,
    KINDS,
    PERSONAL_CHANNELS,
    Kind,
    channel_label,
    kind_vocabulary,
)
from gis_service.settings import Settings

NOTIFICATION_COLUMNS = (
    "id, kind, case_id, event_id, title, body, urgent, created_at, read_at, "
    "(SELECT c.case_no FROM cases c WHERE c.id = n.case_id) AS case_no"
)
DELIVERY_COLUMNS = (
    "id::text AS id, notification_id, subscription_id, kind, source, channel, recipient, "
    "subject, status, attempts, next_attempt_at, last_error, created_at, updated_at, sent_at"
)


def _user(p: Principal) -> int:
    """The account the inbox belongs to; 403 for callers without one (Open311 keys)."""
    if p.user_id is None:
        raise Forbidden("only signed-in accounts have an inbox")
    return p.user_id


# --- the inbox ----------------------------------------------------------------------


def unread(conn: Connection, p: Principal) -> int:
    """How many of the caller's notifications are unread (the badge)."""
    return conn.execute(
        text("SELECT count(*) FROM notification WHERE user_id = :u AND read_at IS NULL"),
        {"u": _user(p)},
    ).scalar_one()


def inbox(
    conn: Connection,
    p: Principal,
    *,
    limit: int = 20,
    before_id: int | None = None,
    unread_only: bool = False,
) -> dict[str, Any]:
    """The caller's notifications, newest first, ``limit`` per page::

    {"items": [{id, kind, case_id, case_no, event_id, title, body, urgent, created_at,
                read_at}], "unread": n, "next_before_id": id | None}

    The next page: ``before_id = next_before_id`` (keyset paging, stable while new ones
    arrive)."""
    user = _user(p)
    where = ["n.user_id = :u"]
    params: dict[str, Any] = {"u": user, "n": limit + 1}
    if before_id is not None:
        where.append("n.id < :before")
        params["before"] = before_id
    if unread_only:
        where.append("n.read_at IS NULL")
    items = [
        dict(r)
        for r in conn.execute(
            text(
                f"SELECT {NOTIFICATION_COLUMNS} FROM notification n WHERE {' AND '.join(where)} "
                "ORDER BY n.id DESC LIMIT :n"
            ),
            params,
        ).mappings()
    ]
    more = len(items) > limit
    items = items[:limit]
    return {
        "items": items,
        "unread": unread(conn, p),
        "next_before_id": items[-1]["id"] if more else None,
    }


def mark_read(conn: Connection, p: Principal, notification_id: int) -> dict[str, Any]:
    """Mark one of the caller's notifications read (idempotent: the first time is kept);
    404 when it is not theirs."""
    row = (
        conn.execute(
            text(
                "UPDATE notification n SET read_at = coalesce(read_at, now()) "
                f"WHERE id = :id AND user_id = :u RETURNING {NOTIFICATION_COLUMNS}"
            ),
            {"id": notification_id, "u": _user(p)},
        )
        .mappings()
        .one_or_none()
    )
    if row is None:
        raise NotFound(f"no notification {notification_id} in your inbox", field="id")
    return dict(row)


def mark_all_read(conn: Connection, p: Principal) -> dict[str, int]:
    """Mark all the caller's unread notifications read: ``{"marked": n, "unread": 0}``."""
    marked = conn.execute(
        text("UPDATE notification SET read_at = now() WHERE user_id = :u AND read_at IS NULL"),
        {"u": _user(p)},
    ).rowcount
    return {"marked": marked, "unread": unread(conn, p)}


# --- preferences ------------------------------------------------------------------------


def preferences(conn: Connection, p: Principal, settings: Settings) -> dict[str, Any]:
    """The caller's choices, each kind × personal channel, with the default where they
    have not chosen (notify/kinds.py DEFAULT_ON), and their quiet hours::

    {"kinds": [{code, label, urgent, reminder}],
     "channels": [{code, label, reachable, unreachable_reason}],
     "choices": [{kind, channel, enabled, chosen}],
     "quiet_hours": {"starts": "22:00", "ends": "07:00", "chosen": false}}

    A channel is ``reachable`` when the account has its address (kinds.py CHANNEL_ADDRESS:
    e-mail, phone); otherwise ``unreachable_reason`` says so in both languages."""
    user = _user(p)
    addresses = (
        conn.execute(
            text(
                f"SELECT {', '.join(sorted(set(CHANNEL_ADDRESS.values())))} FROM app_user "
                "WHERE id = :u"
            ),
            {"u": user},
        )
        .mappings()
        .one_or_none()
        or {}
    )
    chosen = {
        (r.kind, r.channel): r.enabled
        for r in conn.execute(
            text("SELECT kind, channel, enabled FROM notify_preference WHERE user_id = :u"),
            {"u": user},
        )
    }
    quiet = conn.execute(
        text("SELECT starts, ends FROM notify_quiet_hours WHERE user_id = :u"), {"u": user}
    ).one_or_none()
    starts, ends = quiet or (settings.notify_quiet_start, settings.notify_quiet_end)
    return {
        "kinds": kind_vocabulary(),
        "channels": [
            _channel(c, bool(addresses and addresses[CHANNEL_ADDRESS[c]]))
            for c in PERSONAL_CHANNELS
        ],
        "choices": [
            {
                "kind": k.value,
                "channel": c,
                "enabled": chosen.get((k.value, c), k in DEFAULT_ON[c]),
                "chosen": (k.value, c) in chosen,
            }
            for k in KINDS
            for c in PERSONAL_CHANNELS
        ],
        "quiet_hours": {
            "starts": starts.strftime("%H:%M"),
            "ends": ends.strftime("%H:%M"),
            "chosen": quiet is not None,
        },
    }


def _channel(code: str, reachable: bool) -> dict[str, Any]:
    """A personal channel for the preferences answer: its labels, and whether it reaches
    the person (with the reason in both languages when not)."""
    missing = CHANNEL_MISSING[code]
    return {
        "code": code,
        "label": channel_label(code),
        "reachable": reachable,
        "unreachable_reason": None if reachable else {"zh": missing[0], "en": missing[1]},
    }


def set_preferences(
    conn: Connection,
    p: Principal,
    settings: Settings,
    choices: list[dict[str, Any]],
    quiet_hours: dict[str, time] | None,
) -> dict[str, Any]:
    """Store the given choices (others keep theirs or the default) and, when given, the
    quiet hours; 422 naming an unknown kind or channel. Returns :func:`preferences`."""
    user = _user(p)
    for i, c in enumerate(choices):
        if c["kind"] not in {k.value for k in KINDS}:
            raise InvalidInput(
                f"unknown kind {c['kind']!r}; one of {', '.join(KINDS)}", field=f"choices.{i}.kind"
            )
        if c["channel"] not in PERSONAL_CHANNELS:
            raise InvalidInput(
                f"unknown channel {c['channel']!r}; one of {', '.join(PERSONAL_CHANNELS)}",
                field=f"choices.{i}.channel",
            )
        conn.execute(
            text(
                "INSERT INTO notify_preference (user_id, kind, channel, enabled) "
                "VALUES (:u, :k, :c, :e) ON CONFLICT (user_id, kind, channel) "
                "DO UPDATE SET enabled = EXCLUDED.enabled"
            ),
            {"u": user, "k": c["kind"], "c": c["channel"], "e": c["enabled"]},
        )
    if quiet_hours is not None:
        conn.execute(
            text(
                "INSERT INTO notify_quiet_hours (user_id, starts, ends) VALUES (:u, :s, :e) "
                "ON CONFLICT (user_id) DO UPDATE SET starts = EXCLUDED.starts, ends = EXCLUDED.ends"
            ),
            {"u": user, "s": quiet_hours["starts"], "e": quiet_hours["ends"]},
        )
    return preferences(conn, p, settings)


# --- dead letters -----------------------------------------------------------------------


def dead_letters(
    conn: Connection, *, limit: int = 100, channel: str | None = None
) -> dict[str, Any]:
    """Deliveries given up on, newest first, with their last error, of one ``channel``
    (``channels.CHANNELS``) when given: ``{"items": [delivery], "total": n}`` (``total``
    counts them all, of that channel). 422 naming ``channel`` for an unknown one."""
    where = "status = 'dead'"
    if channel is not None:
        if channel not in CHANNELS:
            raise InvalidInput(
                f"unknown channel {channel!r}; one of {', '.join(CHANNELS)}", field="channel"
            )
        where += " AND channel = :channel"
    items = [
        dict(r)
        for r in conn.execute(
            text(
                f"SELECT {DELIVERY_COLUMNS} FROM notify_delivery WHERE {where} "
                "ORDER BY updated_at DESC LIMIT :n"
            ),
            {"n": limit, "channel": channel},
        ).mappings()
    ]
    total = conn.execute(
        text(f"SELECT count(*) FROM notify_delivery WHERE {where}"), {"channel": channel}
    ).scalar_one()
    return {"items": items, "total": total}


def retry(conn: Connection, delivery_id: str) -> dict[str, Any]:
    """Put a dead delivery back in the queue, due now, its tries counted afresh (the
    same delivery id: the receiver still recognises it); 404 unknown, 409 not dead."""
    row = (
        conn.execute(
            text(
                "UPDATE notify_delivery SET status = 'pending', attempts = 0, "
                "next_attempt_at = now(), updated_at = now() "
                f"WHERE id = CAST(:id AS uuid) AND status = 'dead' RETURNING {DELIVERY_COLUMNS}"
            ),
            {"id": delivery_id},
        )
        .mappings()
        .one_or_none()
    )
    if row is not None:
        return dict(row)
    status = conn.execute(
        text("SELECT status FROM notify_delivery WHERE id = CAST(:id AS uuid)"), {"id": delivery_id}
    ).scalar_one_or_none()
    if status is None:
        raise NotFound(f"no delivery {delivery_id}", field="id")
    raise Conflict(f"delivery {delivery_id} is {status}, not dead", field="id")


# --- webhook subscriptions --------------------------------------------------------------

WEBHOOK_COLUMNS = "id, name, url, kinds, active, created_at"
#: a subscription's latest delivery (status, its time, its last error), for the admin page
LAST_DELIVERY = """
    SELECT w.id, w.name, w.url, w.kinds, w.active, w.created_at,
           d.status AS last_status, d.updated_at AS last_delivery_at,
           d.last_error AS last_error
      FROM webhook_subscription w
      LEFT JOIN LATERAL (
            SELECT status, updated_at, last_error FROM notify_delivery
             WHERE subscription_id = w.id ORDER BY updated_at DESC LIMIT 1
      ) d ON true
"""


def webhooks(conn: Connection) -> list[dict[str, Any]]:
    """Every subscription with its latest delivery's ``last_status``,
    ``last_delivery_at`` and ``last_error`` (null: none yet); the secret is never read
    back."""
    return [dict(r) for r in conn.execute(text(f"{LAST_DELIVERY} ORDER BY w.id")).mappings()]


def webhook(conn: Connection, webhook_id: int) -> dict[str, Any]:
    """One subscription, as in :func:`webhooks`; 404 naming the id."""
    row = (
        conn.execute(
            text(f"{LAST_DELIVERY} WHERE w.id = :id"),
            {"id": webhook_id},
        )
        .mappings()
        .one_or_none()
    )
    if row is None:
        raise NotFound(f"no webhook subscription {webhook_id}", field="id")
    return dict(row)


def _check_webhook(values: dict[str, Any]) -> None:
    url = values.get("url")
    if url is not None and not url.startswith(("http://", "https://")):
        raise InvalidInput("url must be an http:// or https:// URL", field="url")
    for i, k in enumerate(values.get("kinds") or []):
        if k not in {x.value for x in Kind}:
            raise InvalidInput(f"unknown kind {k!r}; one of {', '.join(KINDS)}", field=f"kinds.{i}")
    secret = values.get("secret")
    if secret is not None and not 16 <= len(secret) <= 200:
        raise InvalidInput("secret must be 16 to 200 characters", field="secret")


def create_webhook(conn: Connection, values: dict[str, Any]) -> dict[str, Any]:
    """A new subscription; without a ``secret`` one is made. Returns it with ``secret``
    (the only time it is shown); 409 when the name is taken."""
    _check_webhook(values)
    secret = values.get("secret") or secrets.token_urlsafe(32)
    try:
        with conn.begin_nested():
            row = (
                conn.execute(
                    text(
                        "INSERT INTO webhook_subscription (name, url, secret, kinds, active) "
                        "VALUES (:name, :url, :secret, :kinds, :active) "
                        f"RETURNING {WEBHOOK_COLUMNS}"
                    ),
                    {
                        "name": values["name"],
                        "url": values["url"],
                        "secret": secret,
                        "kinds": values.get("kinds") or [],
                        "active": values.get("active", True),
                    },
                )
                .mappings()
                .one()
            )
    except IntegrityError:
        raise Conflict(
            f"a webhook subscription named {values['name']!r} exists", field="name"
        ) from None
    return {**row, "secret": secret}


def update_webhook(conn: Connection, webhook_id: int, values: dict[str, Any]) -> dict[str, Any]:
    """Change the given fields (name, url, secret, kinds, active); 404, 409 as above."""
    _check_webhook(values)
    webhook(conn, webhook_id)
    allowed = [k for k in ("name", "url", "secret", "kinds", "active") if k in values]
    if allowed:
        sets = ", ".join(f"{k} = :{k}" for k in allowed)
        try:
            with conn.begin_nested():
                conn.execute(
                    text(f"UPDATE webhook_subscription SET {sets} WHERE id = :id"),
                    {**{k: values[k] for k in allowed}, "id": webhook_id},
                )
        except IntegrityError:
            raise Conflict(
                f"a webhook subscription named {values['name']!r} exists", field="name"
            ) from None
    return webhook(conn, webhook_id)


def delete_webhook(conn: Connection, webhook_id: int) -> dict[str, Any]:
    """Delete a subscription and its deliveries; returns what was deleted; 404."""
    gone = webhook(conn, webhook_id)
    conn.execute(text("DELETE FROM webhook_subscription WHERE id = :id"), {"id": webhook_id})
    return gone
