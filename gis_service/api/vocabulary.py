"""``GET /api/v1/vocabulary``: the service's word lists, from their Python homes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from gis_service.api.schemas import VocabularyPublic, refusals
from gis_service.vocabulary import vocabulary

router = APIRouter(tags=["vocabulary"])


@router.get(
    "/vocabulary",
    summary="Statuses, actions, priorities, roles, team kinds, unit levels and code lengths",
    response_model=VocabularyPublic,
    response_model_exclude_unset=True,
    responses=refusals(422),
)
def get_vocabulary() -> dict[str, Any]:
    """Every word list the API uses, with labels (zh, en where there is one). Clients read
    them here instead of keeping copies; the shape is documented in
    gis_service/vocabulary.py (``vocabulary()``). Category codes are data:
    GET /api/v1/categories."""
    return vocabulary()
