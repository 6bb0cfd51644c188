"""Request and answer models of the notification API (notify/routes.py)."""

from __future__ import annotations

from datetime import datetime, time

from pydantic import BaseModel, ConfigDict, Field

from gis_service.api.schemas import Public


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class NotificationPublic(Public):
    id: int
    kind: str
    case_id: int | None
    case_no: str | None
    event_id: int | None
    title: str
    body: str
    urgent: bool
    created_at: datetime
    read_at: datetime | None


class NotificationPage(Public):
    items: list[NotificationPublic]
    unread: int = Field(description="All of the caller's unread notifications (the badge)")
    next_before_id: int | None = Field(description="before_id of the next page; null: last")


class Unread(Public):
    unread: int


class Marked(Public):
    marked: int
    unread: int


class Label(Public):
    zh: str
    en: str


class KindPublic(Public):
    code: str
    label: Label
    urgent: bool
    reminder: bool


class ChannelPublic(Public):
    code: str
    label: Label
    reachable: bool = Field(
        description="false: the account has no address for it (no e-mail, no phone), so "
        "it carries nothing whatever the choices"
    )
    unreachable_reason: Label | None = Field(description="Why not, when not reachable")


class Choice(Public):
    kind: str
    channel: str
    enabled: bool
    chosen: bool = Field(description="false: the default, not the person's own choice")


class QuietHoursPublic(Public):
    starts: str = Field(description="HH:MM, service time")
    ends: str
    chosen: bool


class Preferences(Public):
    kinds: list[KindPublic]
    channels: list[ChannelPublic]
    choices: list[Choice]
    quiet_hours: QuietHoursPublic


class ChoiceIn(Request):
    kind: str
    channel: str
    enabled: bool


class QuietHoursIn(Request):
    starts: time = Field(description="HH:MM service time; equal to ends: no quiet hours")
    ends: time


class PreferencesIn(Request):
    choices: list[ChoiceIn] = Field(default_factory=list, max_length=200)
    quiet_hours: QuietHoursIn | None = None


class DeliveryPublic(Public):
    id: str = Field(description="The idempotency id every try carries")
    notification_id: int | None
    subscription_id: int | None
    kind: str
    source: str
    channel: str
    recipient: str
    subject: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None


class DeadLetters(Public):
    items: list[DeliveryPublic]
    total: int


class WebhookPublic(Public):
    id: int
    name: str
    url: str
    kinds: list[str] = Field(description="The kinds sent; empty: all")
    active: bool
    created_at: datetime
    last_status: str | None = Field(default=None, description="The latest delivery's status")
    last_delivery_at: datetime | None = Field(default=None, description="Its last change")
    last_error: str | None = Field(default=None, description="Its last error")


class WebhookCreated(WebhookPublic):
    secret: str = Field(description="The HMAC-SHA256 key; shown only now")


class WebhookList(Public):
    webhooks: list[WebhookPublic]


class WebhookIn(Request):
    name: str = Field(min_length=1, max_length=100)
    url: str = Field(max_length=2000)
    secret: str | None = Field(default=None, description="16–200 characters; omitted: made")
    kinds: list[str] = Field(default_factory=list)
    active: bool = True


class WebhookChange(Request):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    url: str | None = Field(default=None, max_length=2000)
    secret: str | None = None
    kinds: list[str] | None = None
    active: bool | None = None
