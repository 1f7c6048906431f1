"""What the chaos supervisor runs the hub against, all on 127.0.0.1 and port 0: an SMSC
that outlives the hub and counts every submit_sm, the outgoing mail relay (the outbox's
far end), the hub.toml and account, and one `smshub serve` life with its three ports."""

from __future__ import annotations

import email
import re
import socket
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.policy import default
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.e2e.test_cli_and_crash import Server, env_for, run
from tests.smsc.scripted import Answer, ScriptedSmsc, SubmitRecord
from tests.smsc.thread import smsc_in_thread

ACCOUNT, PASSWORD = "acme", "chaos-pass-123"
SENDER, DOMAIN = "ops@acme.example", "sms.localhost"
SMSC_PREFIX = "+2782"  # routed to the SMSC; every other number to the built-in simulator
UNDELIVERED_SUFFIX = "13"  # the simulator reports these numbers undelivered
SUBMIT_ANSWER_DELAY = 0.01  # the SMSC answers each submit_sm this late: a kill can fall between


class RelaySink:
    """The outgoing SMTP relay: keeps the outbox item id of each mail the hub sends (the
    channel puts it in the Message-ID) and how often it came."""

    def __init__(self) -> None:
        self.items: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.on_mail: Callable[[], None] | None = None

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        mail = email.message_from_bytes(envelope.original_content or b"", policy=default)
        found = re.search(r"\.([0-9A-Z]{26})@", str(mail.get("Message-ID", "")))
        with self.lock:
            self.items[found[1] if found else "?"] += 1
        if self.on_mail is not None:
            self.on_mail()
        return "250 OK"


@contextmanager
def relay_sink() -> Iterator[tuple[RelaySink, int]]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sink = RelaySink()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield sink, port
    finally:
        controller.stop()


@dataclass
class Smsc:
    """The SMSC side: submit_sm counted by (number, text), and a hook on each arrival."""

    server: ScriptedSmsc
    on_submit: Callable[[], None] | None = None
    submits: Counter[tuple[str, str]] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, record: SubmitRecord) -> Answer:
        key = (record.dest_addr.lstrip("+"), record.short_message.decode("latin-1"))
        with self.lock:
            self.submits[key] += 1
        if self.on_submit is not None:
            self.on_submit()
        return Answer(delay=SUBMIT_ANSWER_DELAY)


@contextmanager
def smsc() -> Iterator[Smsc]:
    # Receipts follow each answer, and those the hub never acknowledged (it died) are
    # sent again when it binds again, as a real SMSC does.
    with smsc_in_thread(receipt_mode="after", receipt_delay=0.1,
                        redeliver_unacked=True) as server:
        side = Smsc(server)
        server.on_submit = side.answer
        yield side


def hub_toml(smsc_port: int, relay_port: int) -> str:
    return f"""\
[http]
max_connections = 200
[ftp]
enabled = true
port = 0
rows_per_group = 100
report_interval = 0.5
progress_interval = 0.5
failed_login_delay = 0.05
max_connections_per_ip = 32
[smtp]
enabled = true
port = 0
domains = ["{DOMAIN}"]
relay_host = "127.0.0.1"
relay_port = {relay_port}
relay_security = "none"
relay_timeout = 5.0
final_receipt_interval = 1.0
[outbox]
poll_interval = 0.1
lease_seconds = 2.0
retry_base = 0.5
retry_cap = 2.0
[maintenance]
interval = 1.0
[simulator]
report_delay = 0.2
undelivered_suffixes = ["{UNDELIVERED_SUFFIX}"]
[routing]
default_carrier = "simulator"
[[routing.rules]]
prefixes = ["{SMSC_PREFIX}"]
carriers = ["smsc"]
[carriers.smsc]
type = "smpp"
host = "127.0.0.1"
port = {smsc_port}
system_id = "hub"
password = "secret"
window = 50
reconnect_min = 0.1
reconnect_max = 0.5
"""


def prepare(base: Path, smsc_port: int, relay_port: int) -> tuple[dict[str, str], str]:
    """A data directory, hub.toml and account (credits, password, mail sender with
    receipts); returns the environment for `smshub` and the account's API key."""
    toml = base / "hub.toml"
    toml.write_text(hub_toml(smsc_port, relay_port), encoding="utf-8")
    env = env_for(base / "var", SMSHUB_CONFIG=str(toml), SMSHUB_HUB__NODE="chaos",
                  SMSHUB_SIMULATOR__REPORT_DELAY="0.2")
    for args, stdin in ((("account", "create", ACCOUNT, "--credits", "1000000000"), ""),
                        (("account", "password", ACCOUNT), PASSWORD + "\n"),
                        (("account", "mail", ACCOUNT, "--allow-sender", SENDER,
                          "--receipts"), "")):
        done = run(env, *args, stdin=stdin)
        assert done.returncode == 0, done.stderr
    key = run(env, "account", "api-key", ACCOUNT).stdout.strip()
    return env, key


class Life:
    """One `smshub serve` process and the ports its start-up log names."""

    def __init__(self, env: dict[str, str]) -> None:
        self.server = Server.__new__(Server)
        try:  # the process exists before its start-up is read: never leave it behind
            self.server.__init__(env)  # type: ignore[misc]
            self.ftp = int(self.server.wait_for_log(r"FTP drop listening on [\d.]+:(\d+)")[1])
            self.smtp = int(self.server.wait_for_log(r"SMTP listening on [\d.]+:(\d+)")[1])
        except BaseException:
            if hasattr(self.server, "proc"):
                self.server.proc.kill()
                self.server.proc.wait(10)
            raise
        self.proc = self.server.proc
        self.http = self.server.url

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        if self.proc.stderr is not None:
            self.proc.stderr.close()

    def log_text(self) -> str:
        return "".join(self.server.log)

