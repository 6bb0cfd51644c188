"""An SMTP server the tests start on 127.0.0.1 (aiosmtpd), keeping every message it takes.

``SmtpReceiver`` is a real SMTP server in a thread of the test process: the e-mail channel
talks to it over a socket as it would to a district's mail server. It can offer STARTTLS
or speak implicit TLS (with a certificate of a throw-away authority from ``trustme``),
demand AUTH LOGIN/PLAIN, refuse recipients and answer DATA with a chosen reply, so the
retry classification is tested against real replies.

``closed_port()`` is a loopback port nobody listens on (connection refused);
``SilentServer`` accepts connections and never greets (a timeout).
"""

from __future__ import annotations

import socket
import ssl
import threading
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

HOST = "127.0.0.1"


def free_port() -> int:
    """A loopback port free at the time of asking."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def closed_port() -> int:
    """A loopback port with nobody listening: connecting to it is refused."""
    return free_port()


@dataclass
class Received:
    """One message the server accepted: the envelope, the raw bytes and the parsed mail."""

    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    mail: EmailMessage
    smtputf8: bool
    tls: bool
    login: str | None


class _Handler:
    def __init__(self, receiver: SmtpReceiver) -> None:
        self.receiver = receiver

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        reply = self.receiver.refuse.get(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.receiver.data_reply:
            return self.receiver.data_reply
        raw = envelope.original_content or envelope.content
        login = session.auth_data.login.decode() if session.auth_data else None
        with self.receiver.lock:
            self.receiver.messages.append(
                Received(
                    mail_from=envelope.mail_from,
                    rcpt_tos=list(envelope.rcpt_tos),
                    raw=raw,
                    mail=BytesParser(policy=policy.default).parsebytes(raw),
                    smtputf8=envelope.smtp_utf8,
                    # STARTTLS sets session.ssl; implicit TLS shows on the transport
                    tls=session.ssl is not None
                    or server.transport.get_extra_info("ssl_object") is not None,
                    login=login,
                )
            )
        return "250 2.0.0 Message accepted for delivery"


class SmtpReceiver:
    """An aiosmtpd server on 127.0.0.1:``port``; use as a context manager.

    ``starttls``: an ssl server context offered through STARTTLS (and required before
    MAIL); ``implicit_tls``: one wrapped around the socket from the start; ``credentials``:
    (user, password) demanded by AUTH; ``smtputf8``: whether SMTPUTF8 is offered.
    ``refuse`` maps a recipient to the reply its RCPT gets ("550 5.1.1 ..."); a non-empty
    ``data_reply`` answers DATA instead of accepting. ``messages`` holds what arrived."""

    def __init__(
        self,
        *,
        starttls: ssl.SSLContext | None = None,
        implicit_tls: ssl.SSLContext | None = None,
        credentials: tuple[str, str] | None = None,
        smtputf8: bool = True,
    ) -> None:
        self.port = free_port()
        self.messages: list[Received] = []
        self.refuse: dict[str, str] = {}
        self.data_reply: str | None = None
        self.lock = threading.Lock()
        self.credentials = credentials
        params: dict[str, Any] = {"enable_SMTPUTF8": smtputf8}
        if starttls is not None:
            params.update(tls_context=starttls, require_starttls=True)
        if credentials is not None:
            params.update(authenticator=self._authenticate, auth_required=True)
        self.controller = Controller(
            _Handler(self),
            hostname=HOST,
            port=self.port,
            ssl_context=implicit_tls,
            server_hostname="localhost",
            **params,
        )

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and self.credentials is not None
            and (auth_data.login.decode(), auth_data.password.decode()) == self.credentials
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    def __enter__(self) -> SmtpReceiver:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()


class SilentServer:
    """A loopback port that accepts connections (the kernel's backlog) and never says a
    word: a client waiting for the greeting or an HTTP answer times out."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind((HOST, 0))
        self.sock.listen(8)
        self.port: int = self.sock.getsockname()[1]

    def __enter__(self) -> SilentServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()
