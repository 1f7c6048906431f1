"""Benchmark of email-to-SMS: mails/s and SMS/s accepted by a real hub's SMTP listener.

    python bench/smtp_mail.py [--mails 1000] [--recipients 10] [--clients 8] [--loop uvloop]

Each client is a process with one smtplib connection that sends mails from an allowed
sender, each to `--recipients` numbers; every 250 means the mail's SMS are committed
(SQLite, synchronous=FULL), so this measures the whole accept path: SMTP, MIME parsing,
reply stripping, intake and the group commit. The dispatcher is off: only intake is
measured. The hub runs on uvloop, as `smshub serve` does. Clients are processes, not
threads: threads in the hub's process would compete for its GIL and measure that.
"""

from __future__ import annotations

import argparse
import asyncio
import smtplib
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hub.config import load, with_overrides
from hub.mail import MailSettings
from tests.hubthread import HubThread

DOMAIN = "sms.example.co.za"
SENDER = "ops@acme.co.za"


def mail(recipients: int, n: int) -> tuple[list[str], bytes]:
    rcpts = [f"2782{n % 1000:03d}{i:04d}@{DOMAIN}" for i in range(recipients)]
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = SENDER, ", ".join(rcpts), "Alert"
    message.set_content(f"Alert {n}: server down.\n\nRegards,\nOps\n-- \nACME Ltd")
    return rcpts, message.as_bytes(policy=SMTP_POLICY)


def client(port: int, mails: list[tuple[list[str], bytes]], start: float) -> int:
    """One connection sending its share, from `start` (time.time()) on."""
    sent = 0
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as smtp:
        smtp.ehlo("bench.example")
        time.sleep(max(0.0, start - time.time()))  # every client starts together
        for rcpts, raw in mails:
            smtp.sendmail(SENDER, rcpts, raw)
            sent += len(rcpts)
    return sent


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop]:
    if name == "uvloop":
        import uvloop  # noqa: PLC0415 - optional, as in `smshub serve`

        return uvloop.new_event_loop
    return asyncio.new_event_loop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mails", type=int, default=1000)
    parser.add_argument("--recipients", type=int, default=10)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        config = with_overrides(load(None, env={}), hub={"data_dir": tmp},
                                http={"enabled": False}, dispatcher={"enabled": False},
                                smtp={"enabled": True, "port": 0, "domains": [DOMAIN],
                                      "max_recipients": max(args.recipients, 1)})
        hub = HubThread(config, loop_factory(args.loop)).start()
        try:
            hub.account("acme", credits="1000000000")
            account = hub.spool.get_account("acme")
            hub.spool.save_mail_settings(MailSettings(account.id, (SENDER,)))
            work = [mail(args.recipients, n) for n in range(args.mails)]
            shares = [work[i::args.clients] for i in range(args.clients)]
            assert hub.hub.smtp_port is not None
            with ProcessPoolExecutor(args.clients) as pool:
                start = time.time() + 1.0  # processes and connections ready by then
                futures = [pool.submit(client, hub.hub.smtp_port, s, start) for s in shares]
                sms = sum(f.result() for f in futures)
                elapsed = time.time() - start
        finally:
            hub.stop()
    print(f"{args.mails} mails, {sms} SMS, {args.clients} clients: {elapsed:.2f} s, "
          f"{args.mails / elapsed:.0f} mails/s, {sms / elapsed:.0f} SMS/s accepted")


if __name__ == "__main__":
    main()
