"""Which failed deliveries are worth another try: the one home of the classification.

The sender retries a :class:`~gis_service.notify.channels.DeliveryError` with
``retryable=True`` later (same delivery id) and sends one with ``retryable=False`` to the
dead-letter list at once. The channels decide with these two rules:

- SMTP (RFC 5321 §4.2.1): a 4yz reply is a *transient negative completion* ("the command
  may be tried again"), a 5yz reply a *permanent negative completion* (550 mailbox
  unavailable, 553 bad address, 535 bad credentials, 554 transaction failed).
- HTTP (RFC 9110 §15): a 5xx is the server's failure and may pass; a 4xx is the request's
  and will fail again the same way, except 408 Request Timeout (RFC 9110 §15.5.9), 425 Too
  Early (RFC 8470) and 429 Too Many Requests (RFC 6585 §4), which ask for a later try. A
  3xx is not followed (a gateway's URL is configured, not discovered) and is permanent.

Failures before any reply (connection refused or reset, a timeout, a name that does not
resolve) are retryable in both.
"""

from __future__ import annotations

#: HTTP client errors that nevertheless invite a later try
HTTP_RETRYABLE_4XX: frozenset[int] = frozenset({408, 425, 429})


def smtp_retryable(code: int) -> bool:
    """True for an SMTP reply code that is transient (4yz), False for a permanent one.

    Codes outside 400-599 (a server answering nonsense) count as transient."""
    return not 500 <= code <= 599


def http_retryable(status: int) -> bool:
    """True when an HTTP answer with ``status`` (not 2xx) may succeed on a later try."""
    return status >= 500 or status in HTTP_RETRYABLE_4XX
