"""Photos attached to a case: checked and stored by photos.py, recorded here, served back
only to those who may see the case — and to anyone once a supervisor has published the
photo of a case in the public view (auth/scope.py: ``photo_filter``)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, text

from gis_service.auth import sessions
from gis_service.auth.principal import Principal, Role
from gis_service.auth.scope import case_filter, photo_filter, require_case_reader, require_role
from gis_service.cases import photos
from gis_service.cases.service import visible_case
from gis_service.cases.workflow import OPEN_STATUSES
from gis_service.errors import Conflict, InvalidInput, NotFound
from gis_service.settings import Settings

STAGES = ("before", "after")


def add_photo(
    conn: Connection,
    settings: Settings,
    principal: Principal,
    case_id: int,
    stage: str,
    data: bytes,
) -> dict[str, Any]:
    """Store one uploaded photo; see add_processed."""
    return add_processed(
        conn, settings, principal, case_id, stage, photos.process(data, settings.photo_max_bytes)
    )


def add_processed(
    conn: Connection,
    settings: Settings,
    principal: Principal,
    case_id: int,
    stage: str,
    processed: photos.Processed,
) -> dict[str, Any]:
    """Store one photo already checked by photos.process (idempotent: the same bytes for
    the same case and stage return the photo already stored). Runs inside the caller's
    transaction."""
    if stage not in STAGES:
        raise InvalidInput("stage must be before or after", field="stage")
    meta, stored, thumb = processed
    sessions.check_sync(conn, principal)  # a write re-checks its session
    case = visible_case(conn, principal, case_id)
    # a retry (a phone resending its queued report) finds its photo whatever the case's
    # status is now: only new photos need an open case
    row = _stored(conn, case_id, stage, meta.sha256)
    if row is None and case["status"] not in OPEN_STATUSES:
        raise Conflict(
            f"case {case['case_no']} is {case['status']}: no more photos",
            status=case["status"],
            allowed=[],
        )
    if row is None:
        photos.save(settings.photos_path, meta, stored, thumb)
        row = conn.execute(
            text(
                """
            INSERT INTO case_photo (district_code, case_id, stage, sha256, mime, width,
                                    height, bytes, exif_lon, exif_lat, uploaded_by, client_id)
            SELECT c.district_code, c.id, :stage, :sha256, :mime, :width, :height, :bytes,
                   :exif_lon, :exif_lat, :user, :client
              FROM cases c WHERE c.id = :case_id
            ON CONFLICT (case_id, stage, sha256, district_code) DO NOTHING
            RETURNING id, true AS created
            """
            ),
            {
                **asdict(meta),
                "case_id": case_id,
                "stage": stage,
                "user": principal.user_id,
                "client": principal.client_id,
            },
        ).first()
    if row is None:  # a concurrent upload of the same bytes won the insert
        row = _stored(conn, case_id, stage, meta.sha256)
    elif row.created:
        conn.execute(
            text(
                "INSERT INTO case_event (district_code, case_id, actor_id, client_id, action, "
                "data, photo_ids) SELECT c.district_code, c.id, :u, :k, 'photo', "
                "CAST(:d AS jsonb), ARRAY[:p]::bigint[] FROM cases c WHERE c.id = :c"
            ),
            {
                "c": case_id,
                "u": principal.user_id,
                "k": principal.client_id,
                "d": f'{{"stage": "{stage}"}}',
                "p": row.id,
            },
        )
    base = f"/api/v1/cases/{case_id}/photos/{row.id}"
    exif = (
        {"lon": meta.exif_lon, "lat": meta.exif_lat}
        if meta.exif_lon is not None and meta.exif_lat is not None
        else None
    )
    return {
        "id": row.id,
        "case_id": case_id,
        "stage": stage,
        "mime": meta.mime,
        "width": meta.width,
        "height": meta.height,
        "bytes": meta.bytes,
        "sha256": meta.sha256,
        "created": row.created,
        "exif_location": exif,
        "url": base,
        "thumbnail_url": base + "?thumb=true",
    }


def _stored(conn: Connection, case_id: int, stage: str, sha256: str):
    """The photo already stored for these bytes at this stage of the case, if any."""
    return conn.execute(
        text(
            "SELECT id, false AS created FROM case_photo "
            "WHERE case_id = :c AND stage = :s AND sha256 = :h"
        ),
        {"c": case_id, "s": stage, "h": sha256},
    ).first()


def photo_file(
    conn: Connection,
    settings: Settings,
    principal: Principal,
    case_id: int,
    photo_id: int,
    thumb: bool,
) -> tuple[Path, str]:
    """The stored file of a photo the viewer may see: staff see the photos of their cases,
    the anonymous viewer only published photos of cases in the public view (404 for any
    other, as for cases outside a jurisdiction)."""
    require_case_reader(principal, public_view_too=True)
    cases, params = case_filter(principal, "c")
    shown, pparams = photo_filter(principal, "p")
    row = conn.execute(
        text(
            f"""
        SELECT p.sha256, p.mime FROM cases c
          LEFT JOIN case_photo p ON p.case_id = c.id AND p.district_code = c.district_code
               AND p.id = :p AND {shown}
         WHERE c.id = :c AND {cases}
        """
        ),
        {**params, **pparams, "p": photo_id, "c": case_id},
    ).first()
    if row is None:
        raise NotFound(f"no case {case_id} in your jurisdiction", case_id=case_id)
    if row.sha256 is None:
        raise NotFound(f"case {case_id} has no photo {photo_id}")
    path = photos.read(settings.photos_path, row.sha256, row.mime, thumb=thumb)
    return path, "image/jpeg" if thumb else row.mime


#: who may publish a case's photo to the public view (and withdraw it)
PUBLISHERS = (Role.supervisor, Role.admin)


def publish_photo(
    conn: Connection, principal: Principal, case_id: int, photo_id: int, published: bool = True
) -> dict[str, Any]:
    """Publish a photo of a case in the viewer's jurisdiction (or withdraw it, published
    False): the public view then shows it (Open311 media_url) and serves it to anyone
    while its case is public. Supervisors and admins only (403); 404 for a case outside
    the jurisdiction or a photo not of this case. Publishing twice keeps the first time;
    each change is an event on the case's timeline (action ``publish`` or ``unpublish``).
    Runs inside the caller's transaction. Returns {id, case_id, published_at}."""
    require_role(principal, *PUBLISHERS, what="publishing a photo")
    sessions.check_sync(conn, principal)  # a write re-checks its session
    visible_case(conn, principal, case_id, lock=True)
    before = conn.execute(
        text("SELECT published_at FROM case_photo WHERE id = :p AND case_id = :c"),
        {"p": photo_id, "c": case_id},
    ).first()
    if before is None:
        raise NotFound(f"case {case_id} has no photo {photo_id}")
    row = conn.execute(
        text(
            """
        UPDATE case_photo SET
            published_at = CASE WHEN :pub THEN coalesce(published_at, now()) END,
            published_by = CASE WHEN :pub THEN coalesce(published_by, :u) END
         WHERE id = :p RETURNING published_at
        """
        ),
        {"pub": published, "u": principal.user_id, "p": photo_id},
    ).one()
    if (before.published_at is not None) != published:
        conn.execute(
            text(
                "INSERT INTO case_event (district_code, case_id, actor_id, action, photo_ids) "
                "SELECT c.district_code, c.id, :u, :a, ARRAY[:p]::bigint[] "
                "FROM cases c WHERE c.id = :c"
            ),
            {
                "c": case_id,
                "u": principal.user_id,
                "a": "publish" if published else "unpublish",
                "p": photo_id,
            },
        )
    return {"id": photo_id, "case_id": case_id, "published_at": row.published_at}
