"""The e-mail and SMS channels against real servers on 127.0.0.1 started by the tests: an
aiosmtpd SMTP server (tests/smtp_receiver.py) and a stub HTTP SMS gateway
(tests/sms_gateway.py). Every delivery goes through ``deliver()``, the sender's one entry."""

from __future__ import annotations

import html
import json
import ssl
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
import trustme
from pydantic import ValidationError

from gis_service.notify.channels import CHANNELS, DeliveryError, Message, deliver, sms
from gis_service.notify.channels.email import mailbox
from gis_service.notify.channels.retry import smtp_retryable
from gis_service.settings import Settings
from tests.sms_gateway import SmsGateway
from tests.smtp_receiver import HOST, SilentServer, SmtpReceiver, closed_port

SUBJECT = "案件 4101992026113000001 已派遣到您的班组，请在时限内处置并反馈：“井盖缺失”"
BODY = (
    "位置：示范街道 第一社区 01 网格，建设路 12 号楼北侧\n"
    "类别：市政设施 / 井盖缺失\n\n"
    "请在 2026-12-01 18:00 前处置 <紧急> & 反馈。"
)
SENDER = "网格化管理中心 <grid@example.cn>"


def message(**changes: Any) -> Message:
    fields: dict[str, Any] = {
        "delivery_id": str(uuid.uuid4()),
        "event_id": str(uuid.uuid4()),
        "kind": "case.dispatched",
        "recipient": "张三 <zhang.san@example.cn>",
        "subject": SUBJECT,
        "body": BODY,
        "created_at": datetime(2026, 11, 30, 8, 30, tzinfo=UTC),
        "payload": {"case_id": 1},
    }
    fields.update(changes)
    return Message(**fields)


def smtp_settings(port: int, **changes: Any) -> Settings:
    fields: dict[str, Any] = {
        "smtp_host": HOST,
        "smtp_port": port,
        "smtp_from": SENDER,
        "smtp_starttls": False,
        "smtp_timeout_seconds": 5,
    }
    fields.update(changes)
    return Settings(**fields)


@pytest.fixture()
def receiver() -> Iterator[SmtpReceiver]:
    with SmtpReceiver() as server:
        yield server


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture()
def ca_file(ca: trustme.CA, tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


def server_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(HOST, "localhost").configure_cert(context)
    return context


# --- e-mail ---------------------------------------------------------------------------


def test_email_arrives_with_chinese_subject_and_body_intact(receiver: SmtpReceiver) -> None:
    sent = message()
    deliver("email", sent, smtp_settings(receiver.port))

    assert len(receiver.messages) == 1
    got = receiver.messages[0]
    assert got.rcpt_tos == [mailbox(sent.recipient).addr_spec]
    assert got.mail_from == mailbox(SENDER).addr_spec
    # the headers travel as 7-bit RFC 2047 encoded-words, and decode back exactly
    head = got.raw.split(b"\r\n\r\n", 1)[0]
    assert head.isascii()
    assert b"=?utf-8?" in head
    mail = got.mail
    assert mail["Subject"] == SUBJECT
    assert mail["From"].addresses[0].display_name == mailbox(SENDER).display_name
    assert mail["To"].addresses[0].display_name == "张三"
    assert parsedate_to_datetime(mail["Date"]) == sent.created_at
    assert mail["X-Delivery-Id"] == sent.delivery_id
    assert mail["X-Event-Id"] == sent.event_id
    assert mail["X-Notification-Kind"] == sent.kind
    assert mail["Auto-Submitted"] == "auto-generated"
    # plain text first, an HTML alternative with the same text escaped
    assert mail.get_content_type() == "multipart/alternative"
    plain, rich = mail.iter_parts()
    assert plain.get_content_type() == "text/plain"
    assert plain.get_content_charset() == "utf-8"
    assert plain.get_content().replace("\r\n", "\n").rstrip("\n") == BODY
    assert rich.get_content_type() == "text/html"
    page = rich.get_content()
    for line in BODY.splitlines():
        assert html.escape(line) in page
    assert "<紧急>" not in page


def test_a_retry_is_the_same_message(receiver: SmtpReceiver) -> None:
    first, other = message(), message()
    settings = smtp_settings(receiver.port)
    deliver("email", first, settings)
    deliver("email", first, settings)  # the sender's retry after a crash
    deliver("email", other, settings)

    ids = [got.mail["Message-ID"] for got in receiver.messages]
    assert ids[0] == ids[1] == f"<{first.delivery_id}@example.cn>"
    assert ids[2] == f"<{other.delivery_id}@example.cn>"
    assert receiver.messages[0].mail["Date"] == receiver.messages[1].mail["Date"]


@pytest.mark.parametrize(
    ("reply", "where"),
    [
        ("550 5.1.1 <zhang.san@example.cn>: Recipient address rejected", "refuse"),
        ("450 4.2.1 Mailbox busy, try later", "refuse"),
        ("554 5.7.1 Message rejected as spam", "data_reply"),
        ("451 4.3.0 Temporary local problem", "data_reply"),
    ],
)
def test_smtp_replies_classify_by_their_class(
    receiver: SmtpReceiver, reply: str, where: str
) -> None:
    if where == "refuse":
        receiver.refuse["zhang.san@example.cn"] = reply
    else:
        receiver.data_reply = reply
    code = int(reply[:3])
    with pytest.raises(DeliveryError) as caught:
        deliver("email", message(), smtp_settings(receiver.port))
    assert caught.value.retryable is smtp_retryable(code)
    assert caught.value.retryable is (code < 500)
    assert str(code) in str(caught.value)
    assert receiver.messages == []


@pytest.mark.parametrize("recipient", ["not-an-address", "a@", "zhang@example.cn, li@example.cn"])
def test_malformed_address_is_permanent(receiver: SmtpReceiver, recipient: str) -> None:
    with pytest.raises(DeliveryError) as caught:
        deliver("email", message(recipient=recipient), smtp_settings(receiver.port))
    assert caught.value.retryable is False
    assert recipient in str(caught.value)
    assert receiver.messages == []


def test_a_line_break_never_makes_a_header(receiver: SmtpReceiver) -> None:
    settings = smtp_settings(receiver.port)
    deliver("email", message(subject="案件已派遣\r\nBcc: someone@example.cn"), settings)
    [got] = receiver.messages
    assert got.mail["Subject"] == "案件已派遣 Bcc: someone@example.cn"
    assert got.mail["Bcc"] is None
    assert got.rcpt_tos == ["zhang.san@example.cn"]
    with pytest.raises(DeliveryError) as caught:
        deliver("email", message(kind="case.dispatched\nBcc: someone@example.cn"), settings)
    assert caught.value.retryable is False
    assert len(receiver.messages) == 1


@pytest.mark.parametrize("smtputf8", [True, False])
def test_internationalised_address_needs_smtputf8(smtputf8: bool) -> None:
    sent = message(recipient="张三 <zhang@例子.中国>")
    with SmtpReceiver(smtputf8=smtputf8) as server:
        if smtputf8:
            deliver("email", sent, smtp_settings(server.port))
            [got] = server.messages
            assert got.smtputf8 is True
            assert got.rcpt_tos == ["zhang@例子.中国"]
            assert got.mail["Subject"] == SUBJECT
        else:
            with pytest.raises(DeliveryError) as caught:
                deliver("email", sent, smtp_settings(server.port))
            assert caught.value.retryable is False
            assert "SMTPUTF8" in str(caught.value)
            assert server.messages == []


def test_unreachable_smtp_server_is_retryable() -> None:
    with pytest.raises(DeliveryError) as caught:
        deliver("email", message(), smtp_settings(closed_port()))
    assert caught.value.retryable is True
    assert "Connection refused" in str(caught.value) or "ConnectionRefused" in str(caught.value)


def test_silent_smtp_server_times_out_retryable() -> None:
    with SilentServer() as silent, pytest.raises(DeliveryError) as caught:
        deliver("email", message(), smtp_settings(silent.port, smtp_timeout_seconds=0.5))
    assert caught.value.retryable is True


@pytest.mark.parametrize(("user", "password"), [("grid", "pass-123"), ("网格", "秘密-pass")])
def test_starttls_and_login(ca: trustme.CA, ca_file: Path, user: str, password: str) -> None:
    with SmtpReceiver(starttls=server_context(ca), credentials=(user, password)) as server:
        settings = smtp_settings(
            server.port,
            smtp_starttls=True,
            smtp_ca_file=ca_file,
            smtp_user=user,
            smtp_password=password,
        )
        deliver("email", message(), settings)
        assert len(server.messages) == 1
        assert server.messages[0].tls is True
        assert server.messages[0].login == user
        assert server.messages[0].mail["Subject"] == SUBJECT

        # a wrong password: 535, permanent
        wrong = settings.model_copy(update={"smtp_password": "wrong"})
        with pytest.raises(DeliveryError) as caught:
            deliver("email", message(), Settings(**_fields(wrong)))
        assert caught.value.retryable is False
        assert "535" in str(caught.value)

        # the system's authorities do not know the test CA: the certificate does not verify
        with pytest.raises(DeliveryError) as caught:
            deliver("email", message(), smtp_settings(server.port, smtp_starttls=True))
        assert caught.value.retryable is False
        assert "certificate" in str(caught.value)
        assert len(server.messages) == 1


def _fields(settings: Settings) -> dict[str, Any]:
    return {name: getattr(settings, name) for name in Settings.model_fields}


def test_starttls_missing_on_the_server_is_permanent(receiver: SmtpReceiver) -> None:
    with pytest.raises(DeliveryError) as caught:
        deliver("email", message(), smtp_settings(receiver.port, smtp_starttls=True))
    assert caught.value.retryable is False
    assert "STARTTLS" in str(caught.value)
    assert receiver.messages == []


def test_implicit_tls(ca: trustme.CA, ca_file: Path) -> None:
    with SmtpReceiver(implicit_tls=server_context(ca)) as server:
        settings = smtp_settings(server.port, smtp_implicit_tls=True, smtp_ca_file=ca_file)
        deliver("email", message(), settings)
        assert [got.mail["Subject"] for got in server.messages] == [SUBJECT]
        assert server.messages[0].tls is True


def test_email_not_configured_is_permanent() -> None:
    with pytest.raises(DeliveryError) as caught:
        deliver("email", message(), Settings())
    assert caught.value.retryable is False
    assert "GIS_SMTP_HOST" in str(caught.value)


# --- SMS ------------------------------------------------------------------------------

PHONE = "+86 138-0013-8000"
TEXT_MESSAGE = {"subject": "案件已派遣", "body": '建设路 12 号楼 "井盖" 缺失 & 请处置\\ {text}'}


def sms_settings(gateway: SmsGateway, **changes: Any) -> Settings:
    fields: dict[str, Any] = {"sms_url": gateway.url, "sms_timeout_seconds": 5}
    fields.update(changes)
    return Settings(**fields)


def test_sms_json_post_escapes_and_keeps_chinese() -> None:
    template = (
        '{"mobile": "{phone}", "content": "【网格中心】{text}", '
        '"meta": {"outId": "{delivery_id}", "tags": ["{kind}", "{event_id}"]}}'
    )
    sent = message(recipient=PHONE, **TEXT_MESSAGE)
    with SmsGateway() as gateway:
        settings = sms_settings(
            gateway, sms_body_template=template, sms_auth_header="X-Api-Key: k-123:456"
        )
        deliver("sms", sent, settings)

    [call] = gateway.calls
    assert call.method == "POST"
    assert call.path == "/sms/send"
    assert call.headers["content-type"] == "application/json"
    assert call.headers["x-api-key"] == "k-123:456"
    assert call.headers["idempotency-key"] == sent.delivery_id
    body = call.json()
    # the quotes, backslash and braces of the text stay inside their string
    assert body == {
        "mobile": "+8613800138000",
        "content": "【网格中心】" + sms.sms_text(sent, settings.sms_max_segments),
        "meta": {"outId": sent.delivery_id, "tags": [sent.kind, sent.event_id]},
    }
    assert TEXT_MESSAGE["body"] in body["content"]


def test_sms_form_post() -> None:
    template = "mobile={phone}&content=%E3%80%90网格中心%E3%80%91{text}&sign=abc&sid={delivery_id}"
    sent = message(recipient=PHONE, **TEXT_MESSAGE)
    with SmsGateway() as gateway:
        settings = sms_settings(
            gateway,
            sms_body_template=template,
            sms_content_type="application/x-www-form-urlencoded",
            sms_auth_header="Authorization: Bearer token-a/b+c=",
        )
        deliver("sms", sent, settings)

    [call] = gateway.calls
    assert call.method == "POST"
    assert call.headers["content-type"] == "application/x-www-form-urlencoded"
    assert call.body.isascii()  # percent-encoded UTF-8
    assert call.form() == [
        ("mobile", "+8613800138000"),
        ("content", "【网格中心】" + sms.sms_text(sent, settings.sms_max_segments)),
        ("sign", "abc"),
        ("sid", sent.delivery_id),
    ]


def test_sms_get_fills_the_query() -> None:
    sent = message(recipient="13800138000", **TEXT_MESSAGE)
    with SmsGateway() as gateway:
        settings = sms_settings(
            gateway,
            sms_url=gateway.url + "?apikey=k1",
            sms_method="get",
            sms_body_template="to={phone}&msg={text}&ref={delivery_id}",
            sms_auth_header="X-Token: t",
        )
        deliver("sms", sent, settings)

    [call] = gateway.calls
    assert call.method == "GET"
    assert call.body == b""
    assert call.headers["x-token"] == "t"
    assert call.query == [
        ("apikey", "k1"),
        ("to", "13800138000"),
        ("msg", sms.sms_text(sent, settings.sms_max_segments)),
        ("ref", sent.delivery_id),
    ]


@pytest.mark.parametrize("status", [500, 502, 503, 408, 429, 400, 401, 403, 404, 422, 301])
def test_sms_status_classification(status: int) -> None:
    with SmsGateway(statuses=[status]) as gateway, pytest.raises(DeliveryError) as caught:
        deliver("sms", message(recipient=PHONE), sms_settings(gateway))
    assert caught.value.retryable is (status >= 500 or status in (408, 429))
    assert str(status) in str(caught.value)
    assert len(gateway.calls) == 1


def test_sms_retry_after_5xx_succeeds_with_the_same_key() -> None:
    sent = message(recipient=PHONE)
    with SmsGateway(statuses=[503]) as gateway:
        settings = sms_settings(gateway)
        with pytest.raises(DeliveryError):
            deliver("sms", sent, settings)
        deliver("sms", sent, settings)
    assert [c.headers["idempotency-key"] for c in gateway.calls] == [sent.delivery_id] * 2
    assert gateway.calls[0].body == gateway.calls[1].body


def test_sms_unreachable_and_slow_gateway_are_retryable() -> None:
    settings = Settings(sms_url=f"http://{HOST}:{closed_port()}/send", sms_timeout_seconds=2)
    with pytest.raises(DeliveryError) as caught:
        deliver("sms", message(recipient=PHONE), settings)
    assert caught.value.retryable is True

    with SmsGateway(delay=1.5) as gateway, pytest.raises(DeliveryError) as caught:
        deliver("sms", message(recipient=PHONE), sms_settings(gateway, sms_timeout_seconds=0.3))
    assert caught.value.retryable is True
    assert "timed out" in str(caught.value)


@pytest.mark.parametrize("recipient", ["zhang.san@example.cn", "12", "+86 138 0013 8000 1234 5"])
def test_sms_bad_phone_number_is_permanent(recipient: str) -> None:
    with SmsGateway() as gateway, pytest.raises(DeliveryError) as caught:
        deliver("sms", message(recipient=recipient), sms_settings(gateway))
    assert caught.value.retryable is False
    assert gateway.calls == []


def test_sms_not_configured_is_permanent() -> None:
    with pytest.raises(DeliveryError) as caught:
        deliver("sms", message(recipient=PHONE), Settings())
    assert caught.value.retryable is False
    assert "GIS_SMS_URL" in str(caught.value)


# The segment sizes of 3GPP TS 23.038 / 23.040: (single, per segment) units per encoding.
@pytest.mark.parametrize(
    ("char", "enc", "units"),
    [("案", "ucs2", 1), ("a", "gsm7", 1), ("€", "gsm7", 2), ("😀", "ucs2", 2)],
)
def test_sms_segments_follow_the_standard(char: str, enc: str, units: int) -> None:
    assert sms.encoding(char * 5) == enc
    single, per_segment = sms.SEGMENT_UNITS[enc]
    fits_one = single // units
    assert sms.segments(char * fits_one) == 1
    assert sms.segments(char * (fits_one + 1)) == 2
    assert sms.segments(char * (per_segment * 2 // units)) == 2
    assert sms.segments(char * (per_segment * 2 // units + 1)) == 3


@pytest.mark.parametrize("max_segments", [1, 2, 3])
@pytest.mark.parametrize("char", ["案", "a", "😀"])
def test_sms_text_is_cut_to_the_segments(max_segments: int, char: str) -> None:
    sent = message(subject="标题" if char != "a" else "Title", body=char * 2000)
    text = sms.sms_text(sent, max_segments)
    assert sms.segments(text) == max_segments
    assert text.endswith("…" if sms.encoding(sent.subject + char) == "ucs2" else "...")
    assert text.startswith(sent.subject + "\n" + char)
    # nothing to cut: the text is subject, line break, body
    short = message(subject="案件", body="请处置")
    assert sms.sms_text(short, max_segments) == "案件\n请处置"


def test_sms_long_chinese_message_reaches_the_gateway_cut() -> None:
    sent = message(recipient=PHONE, body="井盖缺失，请尽快处置。" * 40)
    with SmsGateway() as gateway:
        deliver("sms", sent, sms_settings(gateway, sms_max_segments=2))
    text = gateway.calls[0].json()["text"]
    assert sms.segments(text) == 2
    assert text.endswith("…")
    assert len(text) <= sms.SEGMENT_UNITS["ucs2"][1] * 2


# --- settings -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "setting"),
    [
        ({"sms_method": "PUT"}, "sms_method"),
        ({"sms_content_type": "text/xml"}, "sms_content_type"),
        ({"sms_body_template": '{"to": "{phone}", "msg": "{txt}"}'}, "GIS_SMS_BODY_TEMPLATE"),
        ({"sms_body_template": '{"to": "{phone}", "msg": "{text!r}"}'}, "GIS_SMS_BODY_TEMPLATE"),
        ({"sms_body_template": '{"to": "{phone}", "msg": "{text}"'}, "GIS_SMS_BODY_TEMPLATE"),
        ({"sms_body_template": '{"to": "{phone}"}'}, "GIS_SMS_BODY_TEMPLATE"),
        (
            {"sms_method": "GET", "sms_body_template": "to={phone}&msg={text}}"},
            "GIS_SMS_BODY_TEMPLATE",
        ),
        (
            {
                "sms_content_type": "application/x-www-form-urlencoded",
                "sms_body_template": '{"to": "{phone}", "msg": "{text}"}',
            },
            "GIS_SMS_BODY_TEMPLATE",
        ),
        ({"sms_auth_header": "Bearer abc"}, "GIS_SMS_AUTH_HEADER"),
        ({"sms_auth_header": "X Key: abc"}, "GIS_SMS_AUTH_HEADER"),
        ({"sms_auth_header": "X-Key: 密钥"}, "GIS_SMS_AUTH_HEADER"),
        ({"sms_auth_header": "X-Key: a\r\nX-Admin: 1"}, "GIS_SMS_AUTH_HEADER"),
        ({"sms_url": "ftp://127.0.0.1/sms"}, "GIS_SMS_URL"),
        ({"sms_timeout_seconds": 0}, "sms_timeout_seconds"),
        ({"sms_max_segments": 0}, "sms_max_segments"),
        ({"smtp_host": HOST}, "GIS_SMTP_FROM"),
        ({"smtp_from": "grid.example.cn"}, "GIS_SMTP_FROM"),
        ({"smtp_host": HOST, "smtp_from": SENDER, "smtp_implicit_tls": True}, "GIS_SMTP_IMPLICIT"),
        (
            {"smtp_host": HOST, "smtp_from": SENDER, "smtp_starttls": False, "smtp_user": "u"},
            "GIS_SMTP_USER",
        ),
        ({"smtp_host": HOST, "smtp_from": SENDER, "smtp_ca_file": "/nonexistent.pem"}, "CA_FILE"),
        ({"smtp_port": 70000}, "smtp_port"),
    ],
)
def test_bad_settings_fail_naming_the_setting(changes: dict[str, Any], setting: str) -> None:
    secret = "s3cret-value-never-printed"
    with pytest.raises(ValidationError) as caught:
        Settings(smtp_password=secret, **changes)
    assert setting in str(caught.value)
    assert secret not in str(caught.value)


def test_bad_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIS_SMS_METHOD", "GET")
    monkeypatch.setenv("GIS_SMS_BODY_TEMPLATE", "to={phone}&msg={message}")
    with pytest.raises(ValidationError) as caught:
        Settings()
    assert "GIS_SMS_BODY_TEMPLATE" in str(caught.value)
    assert "{message}" in str(caught.value)


def test_every_channel_this_branch_owns_has_a_send() -> None:
    import importlib

    for channel in ("email", "sms"):
        assert channel in CHANNELS
        assert callable(importlib.import_module(f"gis_service.notify.channels.{channel}").send)
    assert json.loads(Settings().sms_body_template)  # the default template is valid JSON


def test_every_channel_setting_is_described_and_documented() -> None:
    doc = (Path(__file__).parent.parent / "docs" / "notifications.md").read_text()
    section = doc.split("## Channels", 1)[1]
    names = [n for n in Settings.model_fields if n.startswith(("smtp_", "sms_"))]
    assert len(names) >= 13
    for name in names:
        assert Settings.model_fields[name].description, name
        assert f"GIS_{name.upper()}" in section, name
    for placeholder in sms.PLACEHOLDERS:
        assert f"`{{{placeholder}}}`" in section, placeholder
