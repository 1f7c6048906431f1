"""Hostile SMTP against the real listener with smtplib and raw commands: relaying to foreign
domains, AUTH before TLS, STARTTLS command injection, smuggled ends of data, size and
recipient limits, MIME bombs, broken encodings, references to local files and URLs, and
automatic mail (the full RFC 3834 table, with the receipts it must not cause, is
test_smtp_loops.py). Each gets its SMTP reply code, opens no file and no socket (the
outgoing relay is a trap: nothing may be relayed), stays within the memory bound, and the
listener still takes a normal mail afterwards (P18, P19, P20)."""

from __future__ import annotations

import base64
import itertools
import smtplib
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from hub.accounts import hash_password
from hub.mail import MailSettings
from hub.model import Message
from tests.factories import nested_multipart
from tests.hubthread import HubThread
from tests.integration.hostile.conftest import running_hub
from tests.integration.hostile.watch import Peak, Traps, healthz_answers
from tests.relay import Sink

DOMAIN = "sms.example.co.za"
SENDER = "ops@acme.co.za"
TO = f"27821234567@{DOMAIN}"
MAX_BYTES = 256_000
MAX_RECIPIENTS = 5
PASSWORD = "correct horse battery"
CLICKATELL = f"sms@{DOMAIN}"


@dataclass(frozen=True)
class Served:
    hub: HubThread
    relay: Sink  # where receipts go: a mail taken by mistake would be answered here

    @property
    def port(self) -> int:
        assert self.hub.hub.smtp_port is not None
        return self.hub.hub.smtp_port


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory,
           module_tls: dict[str, str]) -> Iterator[Served]:
    relay = Sink()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        relay_port = probe.getsockname()[1]
    controller = Controller(relay, hostname="127.0.0.1", port=relay_port)
    controller.start()
    smtp = {"enabled": True, "port": 0, "domains": [DOMAIN], **module_tls,
            "clickatell_addresses": [CLICKATELL],
            "max_message_bytes": MAX_BYTES, "max_recipients": MAX_RECIPIENTS,
            "relay_host": "127.0.0.1", "relay_port": relay_port, "relay_security": "none",
            "failed_auth_delay": 0, "auth_failures_per_ip": 1000}
    try:
        with running_hub(tmp_path_factory.mktemp("smtp"), smtp=smtp,
                         outbox={"poll_interval": 0.05, "retry_base": 0.05}) as hub:
            hub.account("acme", credits="1000")
            account = hub.spool.get_account("acme")
            hub.spool.set_password_hash("acme", hash_password(PASSWORD))
            # Receipts on: a mail the hub took by mistake would be answered through the relay.
            hub.spool.save_mail_settings(MailSettings(account.id, (SENDER,), receipts=True))
            yield Served(hub, relay)
    finally:
        controller.stop()


def connect(served: Served) -> smtplib.SMTP:
    client = smtplib.SMTP("127.0.0.1", served.port, timeout=10)
    client.ehlo("client.example")
    return client


def queued(served: Served, reply: str) -> list[Message]:
    mail_id = reply.split("queued as ")[1].split(maxsplit=1)[0]
    return served.hub.spool.batch_messages(mail_id, "", 1000)


_people = itertools.count()


def drained(served: Served) -> Served:
    """The relay with nothing waiting (a failed case may leave a receipt behind)."""
    while not served.relay.mails.empty():
        served.relay.mails.get_nowait()
    return served


def still_serves(served: Served) -> None:
    """/healthz at once, and a person's mail is still taken and answered with a receipt.
    Every mail the relay got meanwhile went to the allowed sender: the attack made the hub
    send nothing anywhere else."""
    healthz_answers(served.hub)
    message_id = f"<person-{next(_people)}@acme.co.za>"
    with connect(served) as client:
        client.sendmail(SENDER, [TO], _mail("still here", f"Message-ID: {message_id}\r\n"))
    while True:
        receipt = served.relay.next()
        assert receipt["To"] == SENDER, f"the hub mailed {receipt['To']}"
        if receipt["In-Reply-To"] == message_id:
            return


def _mail(text: str, headers: str = "", to: str = TO) -> bytes:
    return (f"From: {SENDER}\r\nTo: {to}\r\nSubject: Alert\r\n{headers}\r\n{text}\r\n"
            ).encode()


Command = Callable[[smtplib.SMTP], tuple[int, bytes]]


def _rcpt(address: str, sender: str = SENDER) -> Command:
    def run(client: smtplib.SMTP) -> tuple[int, bytes]:
        code, reply = client.mail(sender)
        assert code == 250, reply
        return client.rcpt(address)

    return run


def _too_many_recipients(client: smtplib.SMTP) -> tuple[int, bytes]:
    client.mail(SENDER)
    answers = [client.rcpt(f"2782123456{i}@{DOMAIN}") for i in range(MAX_RECIPIENTS + 1)]
    assert [code for code, _ in answers[:-1]] == [250] * MAX_RECIPIENTS
    return answers[-1]


def _auth_plain_in_clear(client: smtplib.SMTP) -> tuple[int, bytes]:
    assert not client.has_extn("auth")  # not even offered before STARTTLS
    return client.docmd("AUTH", "PLAIN " + base64.b64encode(
        f"\0acme\0{PASSWORD}".encode()).decode())


ENVELOPE: dict[str, tuple[Command, int] | tuple[Command, int, bytes]] = {
    "relay to a foreign domain": (_rcpt("someone@gmail.com"), 550, b"relaying denied"),
    "our domain, then a foreign one": (_rcpt(f"27821234567@{DOMAIN}@evil.example"), 553),
    "our address quoted in a foreign one": (_rcpt(f'"27821234567@{DOMAIN}"@evil.example'),
                                            550),
    "source route through us": (_rcpt(f"@{DOMAIN}:someone@evil.example"), 553),
    "percent hack": (_rcpt(f"someone%evil.example@{DOMAIN}"), 550),
    "our domain with a trailing dot": (_rcpt(f"27821234567@{DOMAIN}."), 553),
    "a subdomain of ours": (_rcpt(f"27821234567@relay.{DOMAIN}"), 550),
    "a mailbox that is no number": (_rcpt(f"postmaster@{DOMAIN}"), 550),
    "a bounce to a foreign domain": (_rcpt("someone@gmail.com", sender=""), 550),
    "a sender of no account": (lambda c: c.mail("mallory@evil.example"), 530,
                               b"not an allowed sender"),
    "AUTH PLAIN before STARTTLS": (_auth_plain_in_clear, 538),
    "AUTH LOGIN before STARTTLS": (lambda c: c.docmd("AUTH", "LOGIN"), 538),
    "RCPT before MAIL": (lambda c: c.rcpt(TO), 503),
    "recipients over the limit": (_too_many_recipients, 452),
    "SIZE over the limit": (lambda c: c.mail(SENDER, [f"SIZE={MAX_BYTES * 100}"]), 552),
    "a command line of 5,000 characters": (lambda c: c.docmd(
        "RCPT", f"TO:<{'9' * 5000}@{DOMAIN}>"), 500),
}


@pytest.mark.parametrize("name", list(ENVELOPE))
def test_hostile_envelope_gets_its_smtp_refusal(served: Served, traps: Traps,
                                                name: str) -> None:
    command, expected, *says = ENVELOPE[name]
    drained(served)
    with Peak() as peak, connect(served) as client:
        code, reply = command(client)
    assert code == expected, reply
    assert all(words in reply for words in says), reply
    assert b"Traceback" not in reply and b"Error: (" not in reply
    traps.assert_untouched()
    peak.assert_within()
    still_serves(served)


def test_starttls_command_injection_acts_on_nothing(served: Served,
                                                    client_tls: ssl.SSLContext) -> None:
    with connect(served) as client:
        # Commands pipelined behind STARTTLS in the same packet, before the handshake: a
        # server that kept its read buffer would run them as if they came over TLS.
        client.send(b"STARTTLS\r\nMAIL FROM:<mallory@evil.example>\r\n"
                    b"RCPT TO:<27821234567@" + DOMAIN.encode() + b">\r\n")
        code, reply = client.getreply()
        assert code == 220, reply
        client.sock = client_tls.wrap_socket(client.sock, server_hostname="127.0.0.1")
        client.file = None
        client.ehlo("client.example")
        code, reply = client.rcpt(TO)  # no MAIL took effect: the injected one was dropped
        assert code == 503, reply
    still_serves(served)


# --- the mail itself -------------------------------------------------------------------


def _raw_data(raw: bytes) -> Command:
    """DATA with `raw` sent as is (smtplib would escape dots and fix line ends); it must
    end with the only real end of data."""
    def run(client: smtplib.SMTP) -> tuple[int, bytes]:
        assert client.mail(SENDER)[0] == 250
        assert client.rcpt(TO)[0] == 250
        client.putcmd("data")
        assert client.getreply()[0] == 354
        client.send(raw)
        return client.getreply()

    return run


def _data(raw: bytes) -> Command:
    def run(client: smtplib.SMTP) -> tuple[int, bytes]:
        assert client.mail(SENDER)[0] == 250
        assert client.rcpt(TO)[0] == 250
        return client.data(raw)

    return run


def _smuggled(fake_end: bytes) -> Command:
    return _raw_data(_mail("first").rstrip(b"\r\n") + fake_end
                     + b"MAIL FROM:<" + SENDER.encode() + b">\r\nRCPT TO:<27831234567@"
                     + DOMAIN.encode() + b">\r\nDATA\r\nsmuggled\r\n.\r\n")


def _multipart(parts: str, count: int) -> bytes:
    return (f"From: {SENDER}\r\nTo: {TO}\r\nSubject: many\r\nMIME-Version: 1.0\r\n"
            'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
            + f"--b\r\n{parts}\r\n" * count + "--b--\r\n").encode()


def _part(content_type: str, body: str, headers: str = "") -> bytes:
    return _mail(body, f"MIME-Version: 1.0\r\nContent-Type: {content_type}\r\n{headers}")


def _long_clickatell_body(client: smtplib.SMTP) -> tuple[int, bytes]:
    """A key:value body is data: its to: lines count wherever they are, even past the
    64 KB the hub reads of a person's prose."""
    assert client.mail(SENDER)[0] == 250
    assert client.rcpt(CLICKATELL)[0] == 250
    padding = ("user:" + "u" * 900 + "\r\n") * 80
    return client.data(_mail(padding + "text:Server down\r\nto:27821234567\r\n"
                             "to:27831234567\r\n", to=CLICKATELL))


def _bounce(client: smtplib.SMTP) -> tuple[int, bytes]:
    assert client.mail("")[0] == 250
    assert client.rcpt(TO)[0] == 250
    return client.data(_mail("Undeliverable"))


@dataclass(frozen=True)
class Mail:
    send: Callable[..., tuple[int, bytes] | Command]
    code: int
    says: str = ""
    sms: int | None = None  # SMS the mail made, when it was taken
    within: float = 2.0  # seconds for the whole exchange: a mail never stalls the hub
    baited: bool = False  # `send` takes the traps and makes the command naming them


def _names(traps: Traps) -> Command:
    """Every way a mail can name a local file or a URL for its reader to fetch."""
    return _data(_multipart(
        f'Content-Type: message/external-body; access-type=local-file; name="{traps.fifo}"'
        f'\r\n\r\nContent-Type: text/plain\r\n\r\n\r\n--b\r\nContent-Type: message/external-'
        f'body; access-type=URL; URL="{traps.url}/x"\r\n\r\nContent-Type: text/plain\r\n\r\n'
        f'\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>Server down<img src="file://'
        f'{traps.fifo}"><link rel=stylesheet href="{traps.url}/s.css"><iframe src="'
        f'{traps.url}/f"></iframe><object data="file://{traps.fifo}"></object></p>', 1))


MAILS: dict[str, Mail] = {
    **{f"smuggled end of data {fake!r}": Mail(_smuggled(fake), 250, sms=1)
       for fake in (b"\n.\n", b"\r.\r", b"\n.\r\n", b"\r\n.\n", b"\r.\r\n", b"\r\n.\r")},
    # The NUL keeps the dot from ending the mail; the text with a NUL is then refused whole.
    "smuggled end of data after a NUL": Mail(_smuggled(b"\r\n\x00.\r\n"), 550, "U+0000"),
    "a body over the SIZE limit": Mail(_data(_mail("x" * 70 + "\r\n") * (MAX_BYTES // 70)),
                                       552),
    "a data line of 5,000 characters": Mail(_raw_data(_mail("y" * 5000) + b".\r\n"), 500),
    "multipart nested 2,000 deep": Mail(_data(nested_multipart(
        2000, f"From: {SENDER}\r\nTo: {TO}\r\nSubject: deep\r\nMIME-Version: 1.0\r\n")), 554,
        "nested"),
    "message/rfc822 nested 2,000 deep": Mail(_data(
        _mail("hi", "MIME-Version: 1.0\r\n" + "Content-Type: message/rfc822\r\n\r\n" * 2000
              + "Content-Type: text/plain\r\n")), 554, "nested"),
    "5,000 parts": Mail(_data(_multipart("Content-Type: text/plain\r\n\r\nhi", 5000)), 554,
                        "parts"),
    "100 parts with Content-Types of 2 KB": Mail(_data(_multipart(
        "Content-Type: text/plain; " + "a=b;\r\n " * 250 + "charset=utf-8\r\n\r\nhi", 100)),
        554, "Content-Type"),
    "a Content-Type of 100,000 characters": Mail(_data(_part(
        "text/plain; " + "a=b;\r\n " * 20_000 + "charset=utf-8", "hi")), 554, "Content-Type"),
    "a Subject of 20,000 encoded words": Mail(_data(
        f"From: {SENDER}\r\nTo: {TO}\r\nSubject: ".encode()
        + b"=?utf-8?q?a?=\r\n " * 12_000 + b"x\r\n\r\nhi\r\n"), 554, "Subject"),
    "charset idna": Mail(_data(_part("text/plain; charset=idna", "Server down \xff")), 250,
                         sms=1),
    "charset undefined": Mail(_data(_part("text/plain; charset=undefined", "Server down")),
                              250, sms=1),
    "charset zlib_codec": Mail(_data(_part("text/plain; charset=zlib_codec", "Server down")),
                               250, sms=1),
    "an unknown charset": Mail(_data(_part("text/plain; charset=x-evil", "Server down")), 250,
                               sms=1),
    "broken base64": Mail(_data(_part("text/plain", "!!!!====@@@", "Content-Transfer-"
                                      "Encoding: base64\r\n")), 550, "empty"),
    "broken quoted-printable": Mail(_data(_part("text/plain", "Server =ZZ down=\r\n=",
                                                "Content-Transfer-Encoding: quoted-"
                                                "printable\r\n")), 250, sms=1),
    "an unknown transfer encoding": Mail(_data(_part("text/plain", "Server down", "Content-"
                                                     "Transfer-Encoding: x-evil\r\n")), 250,
                                         sms=1),
    "a Subject in a codec that is no charset": Mail(_data(_mail(
        "Server down", "X-A: =?zlib_codec?B?aGk=?= =?idna?Q?=FF?= =?utf-8?B?!!!?=\r\n")), 250,
        sms=1),
    "8-bit bytes and NULs in headers": Mail(_data(
        b"From: " + SENDER.encode() + b"\r\nTo: " + TO.encode() + b"\r\nSubject: \xff\xfe\x00"
        b"\r\nX-Bin: \x80\x00\x81\r\n\r\nServer down\r\n"), 250, sms=1),
    "HTML nested 12,000 deep": Mail(_data(_part(
        "text/html", "<div>\r\n" * 12_000 + "Server down" + "</div>\r\n" * 12_000)), 550,
        "empty"),
    "files and URLs named in the mail": Mail(_names, 250, sms=1, baited=True),
    "a Clickatell body of 72 KB": Mail(_long_clickatell_body, 250, sms=2),
    "a bounce (MAIL FROM:<>)": Mail(_bounce, 250, "RFC 3834"),
    "an auto-reply": Mail(_data(_mail("On holiday", "Auto-Submitted: auto-replied\r\n")), 250,
                          "RFC 3834"),
}


@pytest.mark.parametrize("name", list(MAILS))
def test_hostile_mail_gets_its_smtp_reply(served: Served, traps: Traps, name: str) -> None:
    case = MAILS[name]
    drained(served)
    send = case.send(traps) if case.baited else case.send
    with Peak() as peak, connect(served) as client:
        started = time.monotonic()
        code, reply = send(client)  # type: ignore[arg-type]
        took = time.monotonic() - started
    text = reply.decode(errors="replace")
    assert code == case.code, text
    assert case.says in text and "Traceback" not in text and "Error: (" not in text
    if case.sms is not None:
        assert len(queued(served, text)) == case.sms
    assert took < case.within
    traps.assert_untouched()
    peak.assert_within()
    still_serves(served)


def test_the_size_limit_is_advertised(served: Served) -> None:
    with connect(served) as client:
        assert client.has_extn("size") and client.esmtp_features["size"] == str(MAX_BYTES)


def test_connections_beyond_the_per_address_cap_get_421(tmp_path: Path) -> None:
    """Idle sessions each hold a socket for aiosmtpd's five-minute timeout: without a
    cap, one client could open them until the process has no descriptor left."""
    smtp = {"enabled": True, "port": 0, "domains": [DOMAIN], "max_connections_per_ip": 3}
    with running_hub(tmp_path / "hub", smtp=smtp) as hub:
        assert hub.hub.smtp_port is not None
        port = hub.hub.smtp_port
        held = [smtplib.SMTP("127.0.0.1", port, timeout=10) for _ in range(3)]
        try:
            with pytest.raises(smtplib.SMTPConnectError) as refused:
                smtplib.SMTP("127.0.0.1", port, timeout=10)
            assert refused.value.smtp_code == 421
            with smtplib.SMTP("127.0.0.1", port, timeout=10,
                              source_address=("127.0.0.2", 0)) as other:
                assert other.noop()[0] == 250  # another address is served
            held.pop().quit()
            with smtplib.SMTP("127.0.0.1", port, timeout=10) as again:
                assert again.noop()[0] == 250  # a slot freed is a slot again
            healthz_answers(hub)
        finally:
            for client in held:
                client.close()
