"""Load on every ingress at once for the chaos supervisor: REST, XML, FTP and SMTP
clients in threads, each writing down only what the hub acknowledged (a 202 id, an XML
`accepted` id, a 250 after DATA, a 226 after STOR). Every message has its own (number,
text), so a row stored or submitted twice shows. REST and XML requests left unanswered are
sent again with the same client references (stored once: P1, P12), and files the same
bytes under a new name (sent once: P13); mail is not, so an unacknowledged mail is
either absent or stored once."""

from __future__ import annotations

import ftplib
import io
import itertools
import re
import smtplib
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any
from xml.etree import ElementTree

import httpx

from tests.chaos.rig import ACCOUNT, DOMAIN, PASSWORD, SENDER, Life

XMLNS = "urn:smshub:xml:1"
PAUSE = 0.01  # between requests of one client: load, not a flood on a 2-core machine


@dataclass
class MailAck:
    mail_id: str
    recipients: int


@dataclass
class Ledger:
    """What the hub acknowledged, by ingress, across every life."""

    rest: list[str] = field(default_factory=list)
    xml: list[str] = field(default_factory=list)
    mails: list[MailAck] = field(default_factory=list)
    uploads: list[str] = field(default_factory=list)  # file names answered 226
    tried: Counter[str] = field(default_factory=Counter)  # messages/files offered
    # Requests left unanswered, by ingress (JSON bodies, XML documents, CSV files).
    retries: dict[str, list[Any]] = field(
        default_factory=lambda: {"rest": [], "xml": [], "ftp": []})
    resent_uploads: set[str] = field(default_factory=set)  # both names of each resend
    lock: threading.Lock = field(default_factory=threading.Lock)
    on_ack: Callable[[], None] | None = None

    def acked(self, kind: str, values: list[str] | list[MailAck]) -> None:
        if not values:
            return
        with self.lock:
            getattr(self, kind).extend(values)
        if self.on_ack is not None:
            self.on_ack()

    def unanswered(self, kind: str, body: Any) -> None:
        with self.lock:
            self.retries[kind].append(body)
            self.tried[f"{kind}_resent"] += 1

    def unanswered_body(self, kind: str) -> Any:
        with self.lock:
            return self.retries[kind].pop() if self.retries[kind] else None

    def offered(self, kind: str, count: int) -> None:
        with self.lock:
            self.tried[kind] += count

    def counts(self) -> dict[str, int]:
        with self.lock:
            return {"rest": len(self.rest), "xml": len(self.xml),
                    "smtp_mails": len(self.mails),
                    "smtp_sms": sum(m.recipients for m in self.mails),
                    "ftp_uploads": len(self.uploads)}


_serial = itertools.count(1)


def fresh(tag: str) -> tuple[str, str]:
    """A new (national number, text): half the numbers go to the SMSC (082...), half
    to the simulator (083...); the text alone is unique."""
    n = next(_serial)
    return f"08{2 + n % 2}{n % 10_000_000:07d}", f"{tag}{n}"


class Load:
    """The four clients against one hub life; `stop` ends them all."""

    def __init__(self, life: Life, key: str, ledger: Ledger, cycle: int) -> None:
        self.life, self.key, self.ledger, self.cycle = life, key, ledger, cycle
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._guard, args=(fn,), daemon=True,
                                         name=f"chaos-{fn.__name__}")
                        for fn in (self._rest, self._rest, self._xml, self._ftp, self._smtp)]
        self.errors: list[str] = []

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def join(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(15)

    def _guard(self, fn: Callable[[], None]) -> None:
        while not self.stop.is_set():
            try:
                fn()
            except (OSError, httpx.HTTPError, ftplib.Error, smtplib.SMTPException, EOFError):
                time.sleep(0.02)  # the hub is dying or busy: whatever was in flight is unacked
            except Exception as exc:  # a client bug, not the hub's: reported, not hidden
                self.errors.append(f"{fn.__name__}: {exc!r}")
                time.sleep(0.05)

    def _rest(self) -> None:
        headers = {"Authorization": f"Bearer {self.key}"}
        with httpx.Client(base_url=self.life.http, headers=headers, timeout=10) as client:
            while not self.stop.is_set():
                body = self.ledger.unanswered_body("rest") or self._rest_body()
                r = self._post(client, "rest", body, lambda: client.post("/v1/messages",
                                                                          json=body))
                if r is not None and r.status_code == 202:
                    self._rest_acked(body, r.json())
                time.sleep(PAUSE)

    def _post(self, client: httpx.Client, kind: str, body: Any,
              send: Callable[[], httpx.Response]) -> httpx.Response | None:
        """Send; a request the kill left unanswered, or answered 503 (busy), is kept to
        be sent again with the same client references, as a client would."""
        try:
            r = send()
        except httpx.TransportError:
            self.ledger.unanswered(kind, body)
            raise
        if r.status_code == 503:
            self.ledger.unanswered(kind, body)
            return None
        return r

    def _rest_acked(self, body: dict[str, object], answer: dict[str, Any]) -> None:
        results = answer["results"] if "messages" in body else [answer]
        self.ledger.offered("rest_duplicate_answers",
                            sum(bool(o.get("duplicate")) for o in results))
        self.ledger.acked("rest", [o["id"] for o in results if o["accepted"]])

    def _xml_acked(self, answer: bytes) -> None:
        root = ElementTree.fromstring(answer)
        accepted = list(root.iter(f"{{{XMLNS}}}accepted"))
        self.ledger.offered("xml_duplicate_answers",
                            sum(a.attrib.get("duplicate") == "true" for a in accepted))
        self.ledger.acked("xml", [a.attrib["id"] for a in accepted])

    def resend_unanswered(self) -> int:
        """Once, in the life that settles: each request still unanswered is sent again."""
        sent = 0
        headers = {"Authorization": f"Bearer {self.key}"}
        with httpx.Client(base_url=self.life.http, headers=headers, timeout=10) as client:
            while (body := self.ledger.unanswered_body("rest")) is not None:
                r = client.post("/v1/messages", json=body)
                assert r.status_code == 202, r.text
                self._rest_acked(body, r.json())
                sent += 1
            while (doc := self.ledger.unanswered_body("xml")) is not None:
                r = client.post("/xml", content=doc,
                                headers={"Content-Type": "application/xml"})
                assert r.status_code == 200, r.text
                self._xml_acked(r.content)
                sent += 1
        return sent

    def _rest_body(self) -> dict[str, object]:
        """One message or a batch of five, each with a client_ref: a request the kill
        left unanswered is sent again, and must then be stored once (P1, P12)."""
        count = 1 if next(_serial) % 3 else 5
        drafts = [fresh(f"R{self.cycle}x") for _ in range(count)]
        self.ledger.offered("rest", count)
        messages: list[dict[str, object]] = [{"to": t, "text": x, "client_ref": f"ref-{x}"}
                                             for t, x in drafts]
        return messages[0] if count == 1 else {"messages": messages}

    def _xml(self) -> None:
        headers = {"Authorization": f"Bearer {self.key}", "Content-Type": "application/xml"}
        with httpx.Client(base_url=self.life.http, headers=headers, timeout=10) as client:
            while not self.stop.is_set():
                doc = self.ledger.unanswered_body("xml") or self._xml_doc()
                r = self._post(client, "xml", doc, lambda: client.post("/xml", content=doc))
                if r is not None and r.status_code == 200:
                    self._xml_acked(r.content)
                time.sleep(PAUSE)

    def _xml_doc(self) -> bytes:
        drafts = [fresh(f"X{self.cycle}x") for _ in range(1 + next(_serial) % 4)]
        self.ledger.offered("xml", len(drafts))
        return (f'<submitRequest xmlns="{XMLNS}">' + "".join(
            f"<message><to>{t}</to><text>{x}</text><clientRef>ref-{x}</clientRef></message>"
            for t, x in drafts) + "</submitRequest>").encode()

    def _ftp(self) -> None:
        ftp = ftplib.FTP()
        ftp.connect("127.0.0.1", self.life.ftp, timeout=10)
        try:
            ftp.login(ACCOUNT, PASSWORD)
            while not self.stop.is_set():
                name, body = self._upload()
                try:
                    ftp.storbinary(f"STOR {name}", io.BytesIO(body))  # raises unless 226
                except BaseException:
                    self.ledger.unanswered("ftp", (name, body))  # again, under a new name
                    raise
                self.ledger.acked("uploads", [name])
                time.sleep(0.1 + PAUSE)
        finally:
            ftp.close()

    def _upload(self) -> tuple[str, bytes]:
        """A new CSV of 100 to 800 rows, or one the kill left unanswered: the same bytes
        again under a new name (if it had arrived whole, the hub answers it duplicate)."""
        name = f"c{self.cycle}u{next(_serial)}.csv"
        again: tuple[str, bytes] | None = self.ledger.unanswered_body("ftp")
        if again is not None:
            with self.ledger.lock:  # either copy may be the one answered duplicate
                self.ledger.resent_uploads.update((name, again[0]))
            return name, again[1]
        rows = 100 + next(_serial) % 700
        self.ledger.offered("ftp_rows", rows)
        self.ledger.offered("ftp_uploads", 1)
        return name, ("to,text\n" + "".join(
            "{},{}\n".format(*fresh(f"F{self.cycle}x")) for _ in range(rows))).encode()

    def _smtp(self) -> None:
        with smtplib.SMTP("127.0.0.1", self.life.smtp, timeout=10) as client:
            client.ehlo("client.example")
            while not self.stop.is_set():
                number, text = fresh(f"M{self.cycle}x")
                numbers = [number] + [fresh("")[0] for _ in range(next(_serial) % 3)]
                message = EmailMessage()
                message["From"], message["Subject"] = SENDER, "chaos"
                message["To"] = ", ".join(f"{n}@{DOMAIN}" for n in numbers)
                message.set_content(text)
                self.ledger.offered("smtp_sms", len(numbers))
                if client.mail(SENDER)[0] != 250:
                    client.rset()
                    continue
                taken = sum(client.rcpt(f"{n}@{DOMAIN}")[0] == 250 for n in numbers)
                if taken < len(numbers):
                    client.rset()
                    continue
                code, reply = client.data(message.as_bytes())
                found = re.search(rb"queued as (\S+)", reply)
                if code == 250 and found:  # 250 after DATA: every SMS committed
                    self.ledger.acked("mails", [MailAck(found[1].decode(), len(numbers))])
                time.sleep(PAUSE)
