"""The notification vocabulary: the kinds, their names for people, who counts as urgent,
the delivery statuses. The one home of these words (as cases/workflow.py is for the loop's);
the migration's CHECK constraints, the rules, the API and the pages read them from here.

Channels: the in-app inbox (a ``notification`` row) is every notification's record and is
always written; the outside channels (``channels.CHANNELS``) carry a copy when the
recipient's preferences allow it (webhooks are per subscription, not per person).
"""

from __future__ import annotations

from enum import StrEnum

from gis_service.cases.workflow import Priority
from gis_service.notify.channels import CHANNELS


class Kind(StrEnum):
    """What a notification is about (the issue's list, in its order)."""

    new_case = "new_case"
    dispatched = "dispatched"
    returned = "returned"
    escalated = "escalated"
    awaiting_check = "awaiting_check"
    near_deadline = "near_deadline"
    overdue = "overdue"
    rated_badly = "rated_badly"


KINDS: tuple[Kind, ...] = tuple(Kind)
#: each kind's name for people (zh, en)
KIND_LABELS: dict[Kind, tuple[str, str]] = {
    Kind.new_case: ("辖区新案件", "New case in my area"),
    Kind.dispatched: ("派遣至本队", "Case dispatched to my team"),
    Kind.returned: ("案件回退", "Case returned"),
    Kind.escalated: ("案件上报至我", "Case escalated to me"),
    Kind.awaiting_check: ("待核查", "Handled, awaiting my check"),
    Kind.near_deadline: ("即将到期", "Near its deadline"),
    Kind.overdue: ("已超期", "Overdue"),
    Kind.rated_badly: ("差评", "Rated badly"),
}
#: kinds raised by the scheduler (a deadline), not by a timeline event
REMINDER_KINDS: tuple[Kind, ...] = (Kind.near_deadline, Kind.overdue)

# Urgent (紧急): a notification about a case whose priority is the urgent one, or of a kind
# that cannot wait for the morning: an overdue case and an escalation (上报: the level
# below could not solve it). Quiet hours hold a non-urgent SMS only (rules.is_urgent).
URGENT_PRIORITY: Priority = Priority.urgent
URGENT_KINDS: frozenset[Kind] = frozenset({Kind.overdue, Kind.escalated})

#: outside channels a person chooses per kind (webhooks belong to subscriptions)
PERSONAL_CHANNELS: tuple[str, ...] = tuple(c for c in CHANNELS if c != "webhook")
#: a channel's setting when the person has not chosen: e-mail on, SMS only for the urgent
#: kinds (an SMS costs money and wakes people)
DEFAULT_ON: dict[str, frozenset[Kind]] = {
    "email": frozenset(KINDS),
    "sms": URGENT_KINDS,
}
CHANNEL_LABELS: dict[str, tuple[str, str]] = {
    "email": ("电子邮件", "E-mail"),
    "sms": ("短信", "SMS"),
    "webhook": ("Webhook", "Webhook"),
}
#: the account field (``app_user`` column) a personal channel sends to: without it the
#: channel carries nothing for that person (fanout.py), and the pages say why
CHANNEL_ADDRESS: dict[str, str] = {"email": "email", "sms": "phone"}
#: why a personal channel reaches nobody for a person without that field (zh, en)
CHANNEL_MISSING: dict[str, tuple[str, str]] = {
    "email": (
        "账户未登记电子邮件地址，请联系管理员",
        "No e-mail address on your account: ask an admin",
    ),
    "sms": ("账户未登记手机号码，请联系管理员", "No phone number on your account: ask an admin"),
}


class DeliveryStatus(StrEnum):
    """A delivery's life: pending (due at next_attempt_at) → sending (claimed; a crash
    leaves it so, and it is claimed again after the lease) → sent, or dead (the
    dead-letter list, with the last error, until an admin retries it)."""

    pending = "pending"
    sending = "sending"
    sent = "sent"
    dead = "dead"


DELIVERY_STATUSES: tuple[DeliveryStatus, ...] = tuple(DeliveryStatus)


def channel_label(code: str) -> dict[str, str]:
    """``{"zh", "en"}`` name of a channel (:data:`CHANNEL_LABELS`), as pages and API show it."""
    return {"zh": CHANNEL_LABELS[code][0], "en": CHANNEL_LABELS[code][1]}


def kind_vocabulary() -> list[dict[str, object]]:
    """``[{"code", "label": {"zh", "en"}, "urgent", "reminder"}]`` for the pages and API."""
    return [
        {
            "code": k.value,
            "label": {"zh": KIND_LABELS[k][0], "en": KIND_LABELS[k][1]},
            "urgent": k in URGENT_KINDS,
            "reminder": k in REMINDER_KINDS,
        }
        for k in KINDS
    ]
