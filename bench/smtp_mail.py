"""Benchmark of email-to-SMS: mails/s and SMS/s accepted by a real hub's SMTP listener.

    python bench/smtp_mail.py [--mails 200] [--recipients 10] [--clients 8]

Each client thread keeps one smtplib connection and sends mails from an allowed sender,
each to `--recipients` numbers; every 250 means the mail's SMS are committed (SQLite,
synchronous=FULL), so this measures the whole accept path: SMTP, MIME parsing, reply
stripping, intake and the group commit. The dispatcher is off: only intake is measured.
"""

from __future__ import annotations

import argparse
import smtplib
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
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


def client(port: int, mails: list[tuple[list[str], bytes]]) -> int:
    sent = 0
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as smtp:
        for rcpts, raw in mails:
            smtp.sendmail(SENDER, rcpts, raw)
            sent += len(rcpts)
    return sent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mails", type=int, default=200)
    parser.add_argument("--recipients", type=int, default=10)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        config = with_overrides(load(None, env={}), hub={"data_dir": tmp},
                                http={"enabled": False}, dispatcher={"enabled": False},
                                smtp={"enabled": True, "port": 0, "domains": [DOMAIN],
                                      "max_recipients": max(args.recipients, 1)})
        hub = HubThread(config).start()
        try:
            hub.account("acme", credits="1000000000")
            account = hub.spool.get_account("acme")
            hub.spool.save_mail_settings(MailSettings(account.id, (SENDER,)))
            work = [mail(args.recipients, n) for n in range(args.mails)]
            shares = [work[i::args.clients] for i in range(args.clients)]
            assert hub.hub.smtp_port is not None
            start = time.perf_counter()
            with ThreadPoolExecutor(args.clients) as pool:
                sms = sum(pool.map(lambda s: client(hub.hub.smtp_port or 0, s), shares))
            elapsed = time.perf_counter() - start
        finally:
            hub.stop()
    print(f"{args.mails} mails, {sms} SMS, {args.clients} clients: {elapsed:.2f} s, "
          f"{args.mails / elapsed:.0f} mails/s, {sms / elapsed:.0f} SMS/s accepted")


if __name__ == "__main__":
    main()
