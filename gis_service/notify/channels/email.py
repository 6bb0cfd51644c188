"""The e-mail channel: one message over SMTP with the standard library.

The message (RFC 5322, MIME) is built by :class:`email.message.EmailMessage` under the
``SMTP`` policy restricted to 7-bit transfer: a Chinese subject goes out as an RFC 2047
encoded-word (``=?utf-8?b?…?=``), the bodies as UTF-8 in base64 or quoted-printable, so
every relay passes them whether or not it speaks 8BITMIME. A recipient whose address has
non-ASCII characters is sent with SMTPUTF8 (RFC 6531) when the server offers it
(``smtplib.SMTP.send_message`` decides); a server that does not offer it refuses the
delivery permanently.

It holds a plain-text part (the body as written) and an HTML alternative (the same text,
escaped, in paragraphs; RFC 2046 §5.1.4 multipart/alternative, plain first).

Idempotency: ``Message-ID`` is ``<delivery id@sender's domain>`` and ``Date`` is the
notification's ``created_at``, so every retry of a delivery is the same message and a
mail system (or a reader) recognises the second copy; the headers ``X-Delivery-Id`` and
``X-Event-Id`` carry the ids for machines, ``X-Notification-Kind`` the kind, and
``Auto-Submitted: auto-generated`` (RFC 3834) keeps vacation responders from answering.

Settings (``GIS_SMTP_*``, gis_service/settings.py): host, port, sender, STARTTLS (RFC 3207)
or implicit TLS (RFC 8314 §3, "SMTPS" on 465), a CA file for a private certificate
authority, AUTH login (only over TLS), timeout. Errors: see
:mod:`gis_service.notify.channels.retry` (4yz replies, timeouts, refused or dropped
connections are retryable; 5yz replies, a malformed address, a server lacking STARTTLS,
AUTH or SMTPUTF8, and a certificate that does not verify are not).
"""

from __future__ import annotations

import base64
import email.policy
import html
import re
import smtplib
import ssl
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

from gis_service.notify.channels import DeliveryError, Message
from gis_service.notify.channels.retry import smtp_retryable
from gis_service.settings import Settings

#: RFC 5322 with CRLF line ends, bodies kept to 7 bits (base64 / quoted-printable)
POLICY = email.policy.SMTP.clone(cte_type="7bit")
_ATEXT = re.compile(r"[^A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]")  # RFC 5322 §3.2.3 atext and "."


def mailbox(raw: str) -> Address:
    """One mailbox, ``local@domain`` or ``Name <local@domain>`` (RFC 5322 §3.4).

    Raises ValueError naming what is wrong: not exactly one address, a missing domain, a
    line break, or a defect the ``email`` package finds."""
    if "\r" in raw or "\n" in raw:
        raise ValueError(f"an address may not hold a line break: {raw!r}")
    try:
        header = POLICY.header_factory("To", raw.strip())
        addresses = header.addresses
    except (IndexError, ValueError) as exc:
        raise ValueError(f"not an e-mail address: {raw!r}") from exc
    if header.defects:
        raise ValueError(f"not an e-mail address: {raw!r} ({header.defects[0]})")
    if len(addresses) != 1 or not addresses[0].username or not addresses[0].domain:
        raise ValueError(f"not one e-mail address local@domain: {raw!r}")
    return addresses[0]


def message_id(delivery_id: str, domain: str) -> str:
    """The Message-ID of every try of delivery ``delivery_id`` (RFC 5322 §3.6.4 msg-id)."""
    return f"<{_ATEXT.sub('-', delivery_id)}@{domain}>"


def html_body(subject: str, body: str) -> str:
    """The HTML alternative: the subject as heading, the body's paragraphs (split at blank
    lines, line breaks kept), everything escaped."""
    paragraphs = [p for p in re.split(r"\n\s*\n", body.strip()) if p.strip()]
    parts = "".join(
        "<p>" + "<br>\n".join(html.escape(line) for line in p.splitlines()) + "</p>\n"
        for p in paragraphs
    )
    title = html.escape(subject)
    return (
        '<!DOCTYPE html>\n<html lang="zh-CN">\n<head><meta charset="utf-8">'
        f"<title>{title}</title></head>\n<body>\n<h1>{title}</h1>\n{parts}</body>\n</html>\n"
    )


def build_message(message: Message, settings: Settings) -> EmailMessage:
    """The e-mail of ``message`` (not sent); the subject's line breaks become spaces.
    DeliveryError (permanent) for a recipient that is not one e-mail address, an id with a
    line break, or when e-mail is not configured."""
    if not settings.smtp_host or not settings.smtp_from:
        raise DeliveryError(
            "e-mail is not configured (GIS_SMTP_HOST and GIS_SMTP_FROM)", retryable=False
        )
    sender = mailbox(settings.smtp_from)
    try:
        recipient = mailbox(message.recipient)
    except ValueError as exc:
        raise DeliveryError(str(exc), retryable=False) from None
    mail = EmailMessage(policy=POLICY)
    try:
        mail["From"] = sender
        mail["To"] = recipient
        # one line: a header may not hold a line break (RFC 5322 §2.2; no header injection)
        mail["Subject"] = " ".join(message.subject.split())
        mail["Date"] = format_datetime(message.created_at)
        mail["Message-ID"] = message_id(message.delivery_id, sender.domain)
        mail["Auto-Submitted"] = "auto-generated"
        mail["X-Delivery-Id"] = message.delivery_id
        mail["X-Event-Id"] = message.event_id
        mail["X-Notification-Kind"] = message.kind
    except ValueError as exc:  # a line break in an id or kind
        raise DeliveryError(f"cannot write the e-mail's headers: {exc}", retryable=False) from None
    mail.set_content(message.body, subtype="plain", charset="utf-8")
    mail.add_alternative(html_body(message.subject, message.body), subtype="html")
    return mail


def _connect(settings: Settings) -> smtplib.SMTP:
    context = ssl.create_default_context(
        cafile=str(settings.smtp_ca_file) if settings.smtp_ca_file else None
    )
    host, port, timeout = (
        settings.smtp_host or "",
        settings.smtp_port,
        settings.smtp_timeout_seconds,
    )
    if settings.smtp_implicit_tls:
        return smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
    smtp = smtplib.SMTP(host, port, timeout=timeout)
    if settings.smtp_starttls:
        try:
            smtp.starttls(context=context)
        except BaseException:
            smtp.close()
            raise
    return smtp


def login(smtp: smtplib.SMTP, user: str, password: str) -> None:
    """AUTH as ``user``: ``smtplib``'s login for ASCII credentials (CRAM-MD5, PLAIN,
    LOGIN as offered); for a non-ASCII user name or password, which smtplib cannot encode,
    SASL PLAIN with UTF-8 (RFC 4616 §2, RFC 4954). smtplib's exceptions on failure."""
    if user.isascii() and password.isascii():
        smtp.login(user, password)
        return
    smtp.ehlo_or_helo_if_needed()
    if "PLAIN" not in smtp.esmtp_features.get("auth", "").upper().split():
        raise smtplib.SMTPNotSupportedError(
            "AUTH PLAIN, needed for a non-ASCII user name or password, is not offered"
        )
    token = base64.b64encode(f"\0{user}\0{password}".encode()).decode("ascii")
    code, reply = smtp.docmd("AUTH", "PLAIN " + token)
    if code != 235:
        raise smtplib.SMTPAuthenticationError(code, reply)


def send(message: Message, settings: Settings) -> None:
    """Send ``message`` as an e-mail to ``message.recipient`` (an address) (module doc).

    Returns when the server accepted the message (250 after DATA). Raises DeliveryError:
    retryable for a 4yz reply, a timeout (``smtp_timeout_seconds`` per operation), a
    refused or dropped connection; permanent for a 5yz reply (550 recipient refused, 535
    bad credentials, 554 ...), a malformed address, a server without STARTTLS, AUTH or
    SMTPUTF8 when needed, a certificate that does not verify, no configuration."""
    mail = build_message(message, settings)
    try:
        with _connect(settings) as smtp:
            if settings.smtp_user:
                secret = settings.smtp_password
                login(smtp, settings.smtp_user, secret.get_secret_value() if secret else "")
            smtp.send_message(mail)
    except smtplib.SMTPRecipientsRefused as exc:
        code, reply = next(iter(exc.recipients.values()))
        raise DeliveryError(
            f"recipient {message.recipient} refused: {code} {reply.decode(errors='replace')}",
            retryable=smtp_retryable(code),
        ) from exc
    except smtplib.SMTPResponseException as exc:
        reply = exc.smtp_error
        text = reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
        raise DeliveryError(
            f"SMTP server answered {exc.smtp_code} {text} ({type(exc).__name__})",
            retryable=smtp_retryable(exc.smtp_code),
        ) from exc
    except smtplib.SMTPNotSupportedError as exc:
        raise DeliveryError(f"SMTP server lacks what is needed: {exc}", retryable=False) from exc
    except ssl.SSLCertVerificationError as exc:
        raise DeliveryError(
            f"SMTP server's certificate does not verify: {exc.verify_message} "
            "(GIS_SMTP_CA_FILE names a private certificate authority)",
            retryable=False,
        ) from exc
    except (smtplib.SMTPException, OSError) as exc:  # refused, timeout, dropped, TLS failure
        raise DeliveryError(f"SMTP server unreachable or gone: {exc!r}") from exc
