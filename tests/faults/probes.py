"""Real clients for every ingress of one running hub (httpx for REST and XML, smtplib,
ftplib), each answer kept with what it acknowledged, so a fault test can say what every
protocol answered and then check that nothing acknowledged was lost."""

from __future__ import annotations

import ftplib
import io
import re
import smtplib
from dataclasses import dataclass, field
from email.message import EmailMessage

import httpx
from lxml import etree
from sqlalchemy import func, select

from spool.tables import messages
from tests.hubthread import HubThread
from tests.polling import eventually

DOMAIN = "sms.example.co.za"
SENDER = "ops@acme.co.za"
PASSWORD = "correct horse battery"
NS = "urn:smshub:xml:1"
TO = "0821234567"


@dataclass
class Probes:
    hub: HubThread
    key: str
    acked_ids: list[str] = field(default_factory=list)  # REST and XML 2xx
    acked_mails: list[str] = field(default_factory=list)  # SMTP 250: mail ids

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def readyz(self) -> httpx.Response:
        return httpx.get(f"{self.hub.url}/readyz", timeout=30)

    def rest(self, text: str = "hello") -> httpx.Response:
        answer = httpx.post(f"{self.hub.url}/v1/messages", json={"to": TO, "text": text},
                            headers=self.auth, timeout=30)
        if answer.status_code == 202:
            self.acked_ids.append(answer.json()["id"])
        return answer

    def xml(self, text: str = "hello") -> httpx.Response:
        body = (f'<?xml version="1.0" encoding="UTF-8"?><submitRequest xmlns="{NS}">'
                f"<message><to>{TO}</to><text>{text}</text></message></submitRequest>")
        answer = httpx.post(f"{self.hub.url}/xml", content=body.encode(), timeout=30,
                            headers={**self.auth, "Content-Type": "application/xml"})
        if answer.status_code == 200:
            self.acked_ids += [str(e.get("id")) for e in etree.fromstring(
                answer.content).iter(f"{{{NS}}}accepted")]
        return answer

    def dialects(self, text: str = "hello") -> dict[str, httpx.Response]:
        """One send in each XML dialect (WinSMS, Clickatell, Kannel) and Kannel's GET,
        by password."""
        url = self.hub.url
        winsms = (f"<WinSMS_Multi_Message><User>acme</User><Password>{PASSWORD}</Password>"
                  f"<Messages><Message><MessageText>{text}</MessageText><Numbers><Number>"
                  f"{TO}</Number></Numbers></Message></Messages></WinSMS_Multi_Message>")
        click = (f"<clickAPI><sendMsg><api_id>1</api_id><user>acme</user><password>"
                 f"{PASSWORD}</password><to>27821234567</to><text>{text}</text></sendMsg>"
                 "</clickAPI>")
        kannel = (f'<?xml version="1.0"?><message><submit><da><number>{TO}</number></da>'
                  f"<ud>{text}</ud><from><user>acme</user><pass>{PASSWORD}</pass></from>"
                  "</submit></message>")
        return {
            "winsms": httpx.post(f"{url}/api/xmlsendsmsmulti.asp", content=winsms.encode(),
                                 headers={"Content-Type": "application/xml"}, timeout=30),
            "clickatell": httpx.post(f"{url}/xml/xml", data={"data": click}, timeout=30),
            "kannel": httpx.post(f"{url}/cgi-bin/sendsms", content=kannel.encode(),
                                 headers={"Content-Type": "text/xml"}, timeout=30),
            # The login now in the cache: staged and committed without a task (a
            # Prompter, adapters/http/hot.py), so a fault meets it in the commit.
            "kannel-get": httpx.get(f"{url}/cgi-bin/sendsms", timeout=30, params={
                "username": "acme", "password": PASSWORD, "to": TO, "text": text}),
        }

    def mail(self, text: str = "hello") -> tuple[int, str]:
        """MAIL, RCPT and DATA; the first reply that is not 250, or DATA's 250."""
        assert self.hub.hub.smtp_port is not None
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = SENDER, f"{TO}@{DOMAIN}", "x"
        message.set_content(text)
        with smtplib.SMTP("127.0.0.1", self.hub.hub.smtp_port, timeout=30) as client:
            client.ehlo("client.example")
            for code, reply in (client.mail(SENDER), client.rcpt(f"27821234567@{DOMAIN}")):
                if code != 250:
                    return code, reply.decode()
            code, reply = client.data(message.as_bytes())
        words = reply.decode()
        if code == 250:
            self.acked_mails.append(re.search(r"queued as (\S+)", words)[1])  # type: ignore[index]
        return code, words

    def ftp(self) -> ftplib.FTP:
        assert self.hub.hub.ftp_port is not None
        client = ftplib.FTP()
        client.connect("127.0.0.1", self.hub.hub.ftp_port, timeout=30)
        try:
            client.login("acme", PASSWORD)
        except BaseException:
            client.close()
            raise
        return client

    def store(self, name: str, body: bytes) -> str:
        """STOR over a fresh login; the final reply, or the 4xx/5xx error's text."""
        with self.ftp() as client:
            try:
                try:
                    return client.storbinary(f"STOR {name}", io.BytesIO(body))
                except OSError:  # the server cut the data connection: its reply follows
                    return client.getresp()
            except ftplib.Error as exc:
                return str(exc)

    # --- what was acknowledged ---------------------------------------------------------

    def status(self, message_id: str) -> str | None:
        answer = httpx.get(f"{self.hub.url}/v1/messages/{message_id}", headers=self.auth,
                           timeout=30)
        return answer.json()["status"] if answer.status_code == 200 else None

    def sms_of_mails(self) -> int:
        with self.hub.spool.db.engine.connect() as conn:  # type: ignore[attr-defined]
            return int(conn.execute(select(func.count()).select_from(messages).where(
                messages.c.batch_id.in_(self.acked_mails))).scalar_one())

    def all_delivered(self, timeout: float = 30) -> None:
        """Every acknowledged message is stored and reaches `delivered`; every
        acknowledged mail has its SMS."""
        assert self.sms_of_mails() == len(self.acked_mails)
        for message_id in self.acked_ids:
            eventually(lambda m=message_id: self.status(m) == "delivered", timeout,  # type: ignore[misc]
                       0.05, f"{message_id} delivered")


def refused(answer: httpx.Response) -> httpx.Response | None:
    """The answer unless it accepted (for waiting on the first refusal)."""
    return None if answer.status_code in (200, 202) else answer


def is_temporary(answer: httpx.Response, reason: str) -> bool:
    """A 503 that says `reason` in the body (JSON or XML) and asks for a retry."""
    return (answer.status_code == 503 and reason in answer.text
            and int(answer.headers.get("retry-after", "0")) >= 1)
