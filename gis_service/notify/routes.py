"""``/api/v1/notifications`` (a person's inbox and preferences) and
``/api/v1/admin/notify``, ``/api/v1/admin/webhooks`` (dead letters, webhook
subscriptions). Thin: each route calls notify/service.py in one transaction."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse

from gis_service.api.deps import AdminDep, ConnDep, PrincipalDep, SettingsDep
from gis_service.api.responses import json_response
from gis_service.api.schemas import refusals
from gis_service.db.engine import transaction
from gis_service.notify import schemas as s
from gis_service.notify import service

router = APIRouter(tags=["notifications"], responses=refusals(401, 403, 422))
Id = Annotated[int, Path(ge=1, le=2**63 - 1)]
Uuid = Annotated[
    str, Path(pattern=r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$", max_length=36)
]


@router.get(
    "/notifications", summary="My notifications (the inbox)", response_model=s.NotificationPage
)
def list_notifications(
    conn: ConnDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=100, description="Per page")] = 20,
    before_id: Annotated[int | None, Query(ge=1, description="Page after this id")] = None,
    unread: Annotated[bool, Query(description="Only the unread")] = False,
) -> JSONResponse:
    """The caller's notifications, newest first (notify/service.py ``inbox``), with the
    unread count; page on with ``before_id = next_before_id``. 403 for Open311 keys."""
    return json_response(
        service.inbox(conn, principal, limit=limit, before_id=before_id, unread_only=unread)
    )


@router.get("/notifications/unread", summary="My unread count (the badge)", response_model=s.Unread)
def unread_count(conn: ConnDep, principal: PrincipalDep) -> JSONResponse:
    """``{"unread": n}``: the desk's and the phone's badge."""
    return json_response({"unread": service.unread(conn, principal)})


@router.post(
    "/notifications/{notification_id}/read",
    summary="Mark one notification read",
    response_model=s.NotificationPublic,
    responses=refusals(404),
)
def read_one(notification_id: Id, settings: SettingsDep, principal: PrincipalDep) -> JSONResponse:
    """Marks it read (the first read time is kept); 404 when it is not in your inbox."""
    with transaction(settings) as conn:
        return json_response(service.mark_read(conn, principal, notification_id))


@router.post("/notifications/read-all", summary="Mark all read", response_model=s.Marked)
def read_all(settings: SettingsDep, principal: PrincipalDep) -> JSONResponse:
    """``{"marked": n, "unread": 0}``."""
    with transaction(settings) as conn:
        return json_response(service.mark_all_read(conn, principal))


@router.get(
    "/notifications/preferences",
    summary="My notification channels per kind and quiet hours",
    response_model=s.Preferences,
)
def get_preferences(conn: ConnDep, settings: SettingsDep, principal: PrincipalDep) -> JSONResponse:
    """Each kind × channel (e-mail, SMS) on or off, defaults marked ``chosen: false``;
    the quiet hours (service time) that hold a non-urgent SMS. The inbox always gets every
    notification."""
    return json_response(service.preferences(conn, principal, settings))


@router.put(
    "/notifications/preferences",
    summary="Change my notification channels and quiet hours",
    response_model=s.Preferences,
)
def put_preferences(
    body: s.PreferencesIn, settings: SettingsDep, principal: PrincipalDep
) -> JSONResponse:
    """Stores the given choices (the rest keep theirs) and, when given, the quiet hours;
    422 naming an unknown kind or channel. Answers as GET."""
    with transaction(settings) as conn:
        quiet = body.quiet_hours.model_dump() if body.quiet_hours else None
        return json_response(
            service.set_preferences(
                conn, principal, settings, [c.model_dump() for c in body.choices], quiet
            )
        )


# --- admin ------------------------------------------------------------------------------


@router.get(
    "/admin/notify/dead-letters",
    summary="Deliveries given up on, with their last error",
    response_model=s.DeadLetters,
)
def dead_letters(
    conn: ConnDep,
    _: AdminDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    channel: Annotated[str | None, Query(max_length=20, description="Only this channel")] = None,
) -> JSONResponse:
    """Newest first; ``total`` counts them all (of ``channel`` when given; 422 naming an
    unknown one). Admins only."""
    return json_response(service.dead_letters(conn, limit=limit, channel=channel))


@router.post(
    "/admin/notify/deliveries/{delivery_id}/retry",
    summary="Send a dead delivery again",
    response_model=s.DeliveryPublic,
    responses=refusals(404, 409),
)
def retry_delivery(delivery_id: Uuid, settings: SettingsDep, _: AdminDep) -> JSONResponse:
    """Back in the queue, due now, tries counted afresh, the same delivery id (the
    receiver recognises it); 404 unknown, 409 when it is not dead."""
    with transaction(settings) as conn:
        return json_response(service.retry(conn, delivery_id))


@router.get("/admin/webhooks", summary="Webhook subscriptions", response_model=s.WebhookList)
def list_webhooks(conn: ConnDep, _: AdminDep) -> JSONResponse:
    """Every subscription (secrets are never read back)."""
    return json_response({"webhooks": service.webhooks(conn)})


@router.post(
    "/admin/webhooks",
    summary="Subscribe another system to notifications",
    status_code=201,
    response_model=s.WebhookCreated,
    responses=refusals(409),
)
def create_webhook(body: s.WebhookIn, settings: SettingsDep, _: AdminDep) -> JSONResponse:
    """A new subscription; the answer carries the signing ``secret`` (made when not given),
    the only time it is shown. 409 name taken; 422 naming a bad url, kind or secret."""
    with transaction(settings) as conn:
        return json_response(service.create_webhook(conn, body.model_dump()), 201)


@router.get(
    "/admin/webhooks/{webhook_id}",
    summary="One webhook subscription",
    response_model=s.WebhookPublic,
    responses=refusals(404),
)
def get_webhook(webhook_id: Id, conn: ConnDep, _: AdminDep) -> JSONResponse:
    """404 naming the id."""
    return json_response(service.webhook(conn, webhook_id))


@router.put(
    "/admin/webhooks/{webhook_id}",
    summary="Change a webhook subscription",
    response_model=s.WebhookPublic,
    responses=refusals(404, 409),
)
def change_webhook(
    webhook_id: Id, body: s.WebhookChange, settings: SettingsDep, _: AdminDep
) -> JSONResponse:
    """Changes the fields given (a new ``secret`` applies to retries too)."""
    with transaction(settings) as conn:
        return json_response(
            service.update_webhook(conn, webhook_id, body.model_dump(exclude_unset=True))
        )


@router.delete(
    "/admin/webhooks/{webhook_id}",
    summary="Delete a webhook subscription",
    response_model=s.WebhookPublic,
    responses=refusals(404),
)
def delete_webhook(webhook_id: Id, settings: SettingsDep, _: AdminDep) -> JSONResponse:
    """Deletes it and its deliveries; answers what was deleted."""
    with transaction(settings) as conn:
        return json_response(service.delete_webhook(conn, webhook_id))
