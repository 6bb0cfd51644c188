"""The SMS channel: one HTTP call to the district's SMS gateway, configured, not coded.

Districts buy their SMS from different gateways (a government SMS platform, a carrier's
enterprise interface, a cloud vendor behind a relay), so the call is described by settings
(``GIS_SMS_*``, gis_service/settings.py) instead of one vendor's client:

- ``sms_url`` and ``sms_method`` (``POST`` or ``GET``);
- ``sms_body_template``: for a POST with ``sms_content_type = application/json`` a JSON
  document, for ``application/x-www-form-urlencoded`` (and for every GET, where it becomes
  the URL's query, merged with any query ``sms_url`` already has) a query string
  ``name=value&name=value``. Inside *values* the placeholders of :data:`PLACEHOLDERS`
  stand in curly braces, ``{phone}``, ``{text}``; ``{{`` and ``}}`` are literal braces.
- ``sms_auth_header``: one header ``"Name: value"`` sent with every call.

Templating is safe by construction, not by escaping strings by hand: the template is
parsed first (``json.loads`` or ``urllib.parse.parse_qsl``, at start-up, so a broken one
stops the service with the setting's name), the placeholders are replaced inside the
parsed string values, and the request is serialised by the library: ``json.dumps`` escapes
quotes, backslashes and control characters of a value for a JSON body, ``urlencode`` /
httpx percent-encode it (UTF-8) for a form body or a query. A value can therefore never
break out of its string or add a field. Keys (names) are literal; placeholders carry no
format specs or conversions (``{text!r}``, ``{phone:>20}`` are refused).

The text: ``subject`` and ``body`` joined by a line break, cut to at most
``sms_max_segments`` segments of a concatenated SMS (3GPP TS 23.038 / TS 23.040, what
Chinese carriers bill by): text in the GSM 7-bit alphabet has 160 septets in a single
message and 153 per segment of a longer one (characters of the extension table take two);
any other text, Chinese included, is sent as UCS-2 with 70 characters in a single message
and 67 per segment (a character outside the Basic Multilingual Plane takes two). Cut text
ends in "…" ("..." in GSM text). The gateway does the splitting; we only bound the cost.

The delivery id travels as the ``Idempotency-Key`` header (IETF draft
httpapi-idempotency-key-header) and as ``{delivery_id}`` for gateways that take a client
message id, so a retry after a crash is recognisable there. Errors: see
:mod:`gis_service.notify.channels.retry` (5xx, 408, 425, 429, timeouts and refused
connections are retryable; other 4xx and 3xx, and a recipient that is no phone number,
are not). A gateway that answers 200 with an error code in its body counts as delivered:
the gateways do not agree on where such a code stands.
"""

from __future__ import annotations

import json
import re
import string
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode

from gis_service.notify.channels import DeliveryError, Message
from gis_service.notify.channels.retry import http_retryable
from gis_service.settings import Settings

if TYPE_CHECKING:
    import httpx

#: the names a template may use, each with what it is replaced by
PLACEHOLDERS: dict[str, str] = {
    "phone": "the recipient's number as stored, spaces and hyphens removed",
    "text": "the SMS text: subject and body, cut to sms_max_segments segments",
    "delivery_id": "the idempotency id, the same on every retry of this delivery",
    "event_id": "the case event or reminder the message is about",
    "kind": "the kind of notification (e.g. case.dispatched)",
    "created_at": "when the notification was made, ISO 8601 in UTC",
}
#: the body media types a POST may use
CONTENT_TYPES: tuple[str, ...] = ("application/json", "application/x-www-form-urlencoded")
#: the HTTP methods a gateway call may use
METHODS: tuple[str, ...] = ("POST", "GET")

# 3GPP TS 23.038 §6.2.1: the GSM 7-bit default alphabet and its extension table (escape + 1)
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")
#: (units in a single message, units per segment of a concatenated one) per encoding
SEGMENT_UNITS: dict[str, tuple[int, int]] = {"gsm7": (160, 153), "ucs2": (70, 67)}

_PHONE = re.compile(r"\+?[0-9]{3,15}")  # ITU-T E.164: at most 15 digits
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 §5.6.2 field name


@dataclass(frozen=True)
class BodyTemplate:
    """A parsed ``sms_body_template``: ``tree`` is the JSON document (``kind == "json"``)
    or the list of (name, value) pairs of a query string (``kind == "query"``)."""

    kind: str
    tree: Any


def _fields(value: str) -> list[tuple[str, str | None]]:
    """``value`` as (literal, placeholder name or None) pieces; ValueError when it uses an
    unknown name, a positional ``{}``, a format spec or a conversion."""
    pieces: list[tuple[str, str | None]] = []
    try:
        parsed = list(string.Formatter().parse(value))
    except ValueError as exc:  # "Single '}' encountered in format string"
        raise ValueError(f"{exc} in {value!r} (write {{{{ and }}}} for literal braces)") from None
    for literal, name, spec, conversion in parsed:
        if name is not None:
            if name not in PLACEHOLDERS:
                raise ValueError(
                    f"unknown placeholder {{{name}}}; known: "
                    + ", ".join(f"{{{n}}}" for n in PLACEHOLDERS)
                )
            if spec or conversion:
                raise ValueError(f"placeholder {{{name}}} may not carry a format or conversion")
        pieces.append((literal, name))
    return pieces


def _strings(node: Any) -> list[str]:
    """The string values of a JSON tree (not its keys)."""
    if isinstance(node, str):
        return [node]
    if isinstance(node, list):
        return [s for item in node for s in _strings(item)]
    if isinstance(node, dict):
        return [s for item in node.values() for s in _strings(item)]
    return []


#: the placeholders every template must use: a gateway needs the number and the text
REQUIRED: tuple[str, ...] = ("phone", "text")


def parse_template(template: str, method: str, content_type: str) -> BodyTemplate:
    """Parse ``sms_body_template`` for ``method`` and ``content_type`` (see module doc).

    Raises ValueError saying what is wrong (not valid JSON, not a query string, an unknown
    placeholder); the settings name the setting around it."""
    if method == "POST" and content_type == "application/json":
        try:
            tree = json.loads(template)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not a JSON document for {content_type}: {exc}") from None
        parsed = BodyTemplate("json", tree)
        values = _strings(tree)
    else:
        try:
            pairs = parse_qsl(template, keep_blank_values=True, strict_parsing=True)
        except ValueError as exc:
            raise ValueError(f"not a query string name=value&name=value: {exc}") from None
        parsed = BodyTemplate("query", pairs)
        values = [value for _, value in pairs]
    used = {name for value in values for _, name in _fields(value) if name}
    missing = [f"{{{name}}}" for name in REQUIRED if name not in used]
    if missing:
        raise ValueError(f"the template does not use {' and '.join(missing)}")
    return parsed


def _fill(node: Any, values: dict[str, str]) -> Any:
    if isinstance(node, str):
        return "".join(lit + (values[name] if name else "") for lit, name in _fields(node))
    if isinstance(node, list):
        return [_fill(item, values) for item in node]
    if isinstance(node, dict):
        return {key: _fill(item, values) for key, item in node.items()}
    return node


def render(template: BodyTemplate, values: dict[str, str]) -> Any:
    """The template with ``values`` put in: a JSON tree or a list of (name, value) pairs."""
    if template.kind == "json":
        return _fill(template.tree, values)
    return [(name, _fill(value, values)) for name, value in template.tree]


def parse_auth_header(raw: str) -> tuple[str, str]:
    """``"Name: value"`` as (name, value); ValueError unless the name is an HTTP field
    name (RFC 9110 §5.1) and the value non-empty printable ASCII (§5.5)."""
    name, sep, value = raw.partition(":")
    name, value = name.strip(), value.strip()
    if not sep or not _TOKEN.fullmatch(name):
        raise ValueError('expected "Name: value", e.g. "Authorization: Bearer …"')
    if not value or not all(" " <= c <= "~" or c == "\t" for c in value):
        # RFC 9110 §5.5: visible ASCII, spaces and tabs (a line break would add a header)
        raise ValueError(f"the value of header {name} is empty or not printable ASCII")
    return name, value


def encoding(text: str) -> str:
    """``"gsm7"`` when every character is in the GSM 7-bit alphabet, else ``"ucs2"``."""
    return "gsm7" if all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text) else "ucs2"


def _units(char: str, enc: str) -> int:
    if enc == "gsm7":
        return 2 if char in GSM7_EXTENSION else 1
    return 2 if ord(char) > 0xFFFF else 1  # UTF-16 surrogate pair


def segments(text: str) -> int:
    """How many segments ``text`` takes as an SMS (TS 23.038 / TS 23.040, module doc)."""
    enc = encoding(text)
    single, per_segment = SEGMENT_UNITS[enc]
    units = sum(_units(c, enc) for c in text)
    return 1 if units <= single else -(-units // per_segment)


def fit(text: str, max_segments: int) -> str:
    """``text`` cut (with an ellipsis) so it takes at most ``max_segments`` segments."""
    if segments(text) <= max_segments:
        return text
    enc = encoding(text)
    single, per_segment = SEGMENT_UNITS[enc]
    ellipsis = "..." if enc == "gsm7" else "…"
    budget = (single if max_segments == 1 else per_segment * max_segments) - len(ellipsis)
    kept: list[str] = []
    for char in text:
        budget -= _units(char, enc)
        if budget < 0:
            break
        kept.append(char)
    return "".join(kept).rstrip() + ellipsis


def sms_text(message: Message, max_segments: int) -> str:
    """The text an SMS of ``message`` carries: subject, line break, body; cut to fit."""
    text = "\n".join(part.strip() for part in (message.subject, message.body) if part.strip())
    return fit(text, max_segments)


def phone_number(recipient: str) -> str:
    """The recipient as digits (with an optional leading +); DeliveryError (permanent)
    when it is not a phone number (3-15 digits, ITU-T E.164)."""
    number = re.sub(r"[\s\-()]", "", recipient)
    if not _PHONE.fullmatch(number):
        raise DeliveryError(f"not a phone number: {recipient!r}", retryable=False)
    return number


def build_request(message: Message, settings: Settings) -> httpx.Request:
    """The gateway call for ``message`` as an httpx request (not sent).

    DeliveryError (permanent) when the SMS channel is not configured (``sms_url`` unset)
    or the recipient is no phone number."""
    import httpx  # here, not at the top: the settings check imports this module at start

    if not settings.sms_url:
        raise DeliveryError("the SMS gateway is not configured (GIS_SMS_URL)", retryable=False)
    values = {
        "phone": phone_number(message.recipient),
        "text": sms_text(message, settings.sms_max_segments),
        "delivery_id": message.delivery_id,
        "event_id": message.event_id,
        "kind": message.kind,
        "created_at": message.created_at.isoformat(),
    }
    template = parse_template(
        settings.sms_body_template, settings.sms_method, settings.sms_content_type
    )
    filled = render(template, values)
    headers = {"User-Agent": "gis-service notifications", "Idempotency-Key": message.delivery_id}
    if settings.sms_auth_header is not None:
        name, value = parse_auth_header(settings.sms_auth_header.get_secret_value())
        headers[name] = value
    if settings.sms_method == "GET":
        # added to the query sms_url may hold (httpx's params= would replace it)
        url = httpx.URL(settings.sms_url).copy_merge_params(filled)
        return httpx.Request("GET", url, headers=headers)
    if template.kind == "json":
        content = json.dumps(filled, ensure_ascii=False).encode()
    else:
        content = urlencode(filled).encode()
    headers["Content-Type"] = settings.sms_content_type
    return httpx.Request("POST", settings.sms_url, content=content, headers=headers)


def send(message: Message, settings: Settings) -> None:
    """Send ``message`` as an SMS through the configured gateway (module doc).

    Returns when the gateway answered 2xx. Raises DeliveryError: retryable for a timeout
    (``sms_timeout_seconds``), a refused or broken connection, a 5xx, 408, 425 or 429;
    permanent for another 4xx, a 3xx, an unconfigured gateway or a bad phone number."""
    import httpx

    request = build_request(message, settings)
    try:
        with httpx.Client(timeout=settings.sms_timeout_seconds, follow_redirects=False) as client:
            response = client.send(request)
    except httpx.TimeoutException as exc:
        raise DeliveryError(f"SMS gateway timed out: {exc!r}") from exc
    except httpx.TransportError as exc:
        raise DeliveryError(f"SMS gateway unreachable: {exc!r}") from exc
    if response.is_success:
        return
    excerpt = response.text[:200]
    raise DeliveryError(
        f"SMS gateway answered {response.status_code} {response.reason_phrase}: {excerpt}",
        retryable=http_retryable(response.status_code),
    )
