"""The outgoing SMTP relay tests point the hub at: an aiosmtpd server on 127.0.0.1 that
keeps what the hub mails (receipts, replies) for the test thread to await."""

from __future__ import annotations

import email
import queue
import socket
from collections.abc import Iterator
from email.message import Message
from email.policy import default

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


class Sink:
    """The outgoing relay: keeps what it is sent, for the test thread to await."""

    def __init__(self) -> None:
        self.mails: queue.Queue[Message] = queue.Queue()

    async def handle_DATA(self, server: SMTP, session: Session,
                          envelope: Envelope) -> str:
        self.mails.put(email.message_from_bytes(envelope.original_content or b"",
                                                policy=default))
        return "250 OK"

    def next(self) -> Message:
        return self.mails.get(timeout=15)


@pytest.fixture
def sink() -> Iterator[tuple[Sink, int]]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    handler = Sink()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()
