"""FTP and SMTP on several nodes of one PostgreSQL spool, as behind a TCP load balancer
(issue #16, docs/nodes.md): each node a `smshub serve` process with its own name and data
directory, the FTP area shared between them. An upload or a mail acknowledged by a node
that is then killed is processed once by another, which serves the answer files and
mails the receipts; an upload is processed once by its node while another restarts, and
its files are served by that other; a batch paused by a node that stops is resumed by
another."""

from __future__ import annotations

import csv
import ftplib
import io
import secrets
import shutil
import smtplib
import time
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from email.message import EmailMessage
from pathlib import Path

import pytest
import sqlalchemy
from sqlalchemy.engine import make_url

from hub.accounts import hash_password
from hub.mail import MailSettings
from spool import open_spool
from tests.e2e.test_cli_and_crash import Server, env_for
from tests.noderig import Node
from tests.polling import eventually
from tests.relay import Sink

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

PASSWORD = "batch-pass-1"
SENDER = "ops@acme.co.za"
SMALL_GROUPS = {"SMSHUB_FTP__ROWS_PER_GROUP": "100"}  # the least [ftp] allows


class Cluster:
    """Nodes on one spool. Each has its own data directory, as on its own host; their
    `ftp` and `ftp-work` folders are one shared file system (here, links to one folder)
    and `secret.key` is copied, as docs/nodes.md asks of an operator."""

    def __init__(self, root: Path, pg_url: str, servers: list[Server], **extra: str) -> None:
        self._root = root
        self._servers = servers
        self._extra = {
            "SMSHUB_SPOOL__URL": pg_url,
            "SMSHUB_HUB__HEARTBEAT_INTERVAL": "0.2",  # a batch's lease: 0.6 s
            # A killed node's claimed messages go back to the queue within a second.
            "SMSHUB_DISPATCHER__LEASE_SECONDS": "1",
            "SMSHUB_MAINTENANCE__INTERVAL": "0.5",
            "SMSHUB_HUB__PROCESSES": "1",  # one process a node: half the start-up time
            **extra,
        }
        for area in ("ftp", "ftp-work"):
            (root / "shared" / area).mkdir(parents=True)
        self._secret = root / "secret.key"  # one key, copied to every node
        self._secret.write_bytes(secrets.token_bytes(32))
        self.engine = sqlalchemy.create_engine(
            make_url(pg_url).set(drivername="postgresql+psycopg"), poolclass=sqlalchemy.NullPool
        )

    def env(self, name: str, **extra: str) -> dict[str, str]:
        data = self._root / name
        if not data.exists():
            data.mkdir()
            for area in ("ftp", "ftp-work"):
                (data / area).symlink_to(self._root / "shared" / area)
            shutil.copy2(self._secret, data / "secret.key")
        return env_for(data, SMSHUB_HUB__NODE=name, **{**self._extra, **extra})

    def start(self, *nodes: tuple[str, str, dict[str, str]]) -> list[Node]:
        """Start (name, role, extra environment) nodes side by side; wait for each."""
        spawned = [Node(self.env(name, **extra), name, role, wait=False)
                   for name, role, extra in nodes]
        self._servers.extend(spawned)
        return [node.started() for node in spawned]

    def setup(self, pg_url: str, mail: MailSettings | None = None) -> None:
        """What `smshub db upgrade`, `account create`, `account password` and `account
        mail` do, done in this process (each command would start an interpreter)."""
        spool = open_spool(pg_url)
        try:
            spool.upgrade()
            account = spool.create_account("acme", Decimal(100000), Decimal("0.25"), ["ACME"])
            spool.set_password_hash("acme", hash_password(PASSWORD))
            if mail is not None:
                spool.save_mail_settings(replace(mail, account_id=account.id))
        finally:
            spool.close()

    def rows(self, query: str, **params: object) -> list[tuple[object, ...]]:
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sqlalchemy.text(query), params)]


@pytest.fixture
def ftp_cluster(tmp_path: Path, pg_url: str, servers: list[Server]) -> Iterator[Cluster]:
    cluster = Cluster(
        tmp_path,
        pg_url,
        servers,
        SMSHUB_FTP__ENABLED="true",
        SMSHUB_FTP__PORT="0",
        SMSHUB_FTP__REPORT_INTERVAL="0.1",
    )
    cluster.setup(pg_url)
    yield cluster
    cluster.engine.dispose()


def _client(node: Node) -> ftplib.FTP:
    ftp = ftplib.FTP()
    ftp.connect("127.0.0.1", node.listening("FTP drop"), timeout=10)
    ftp.login("acme", PASSWORD)
    return ftp


def _upload(node: Node, name: str, rows: int) -> None:
    body = "to,text\n" + "".join(f"08{2000000 + i:08d},row {i}\n" for i in range(rows))
    ftp = _client(node)
    try:
        ftp.storbinary(f"STOR {name}", io.BytesIO(body.encode()))  # returns on the 226
    finally:
        ftp.close()


def _fetch(node: Node, path: str) -> list[list[str]] | None:
    """The file as that node serves it over FTP, or None while it is not there."""
    ftp, got = _client(node), io.BytesIO()
    try:
        ftp.retrbinary(f"RETR {path}", got.write)
    except ftplib.error_perm:
        return None
    finally:
        ftp.close()
    return list(csv.reader(io.StringIO(got.getvalue().decode("utf-8-sig"))))


def _stored_lines(cluster: Cluster, batch_id: str) -> list[int]:
    return [
        int(str(line))
        for (line,) in cluster.rows(
            "SELECT batch_line FROM messages WHERE batch_id = :b ORDER BY batch_line", b=batch_id
        )
    ]


def _batch(cluster: Cluster, name: str) -> str:
    return str(
        eventually(
            lambda: cluster.rows("SELECT id FROM batches WHERE file_name = :n", n=name), 10, 0.01
        )[0][0]
    )


def _assert_once_and_served(cluster: Cluster, node: Node, name: str, rows: int) -> None:
    """What `_check_served` says, of the files this node serves over FTP; on failure
    with the node's log."""
    try:
        _check_served(cluster, node, name, rows)
    except AssertionError as failed:  # what the node was doing, for whoever reads this
        counts = cluster.rows("SELECT status, count(*) FROM messages GROUP BY status")
        raise AssertionError(
            f"{failed}\nmessages by status: {counts}\n{node.name}'s log:\n"
            + "".join(node.log[-40:])
        ) from failed


def _check_served(cluster: Cluster, node: Node, name: str, rows: int) -> None:
    """Every row listed once in the result file, each row's message stored once, every
    message in the report file."""
    stem = name.rsplit(".", 1)[0]
    result = eventually(
        lambda: _fetch(node, f"results/{stem}.result.csv"),
        30,
        0.1,
        f"{node.name} serving the result file",
    )
    listed = result[1:-1]
    assert [int(r[0]) for r in listed] == list(range(2, rows + 2))
    assert {r[3] for r in listed} == {"accepted"}
    batch_id = _batch(cluster, name)
    assert _stored_lines(cluster, batch_id) == list(range(2, rows + 2))  # none twice
    assert {r[4] for r in listed} == {
        str(m) for (m,) in cluster.rows("SELECT id FROM messages WHERE batch_id = :b", b=batch_id)
    }
    # Every message of the batch in the report file the node writes and serves. It stays
    # `pending` if the killed node had submitted some: its simulator, and the delivery
    # reports it owed them, died with it (as an SMSC's lost reports would).
    report = eventually(
        lambda: (
            (got := _fetch(node, f"reports/{stem}.report.csv")) and len(got) == rows + 2 and got
        ),
        60,
        0.1,
        "a report file listing every message",
    )
    assert {r[0] for r in report[1:-1]} == {r[4] for r in listed}
    assert report[-1][1] == f"batch {batch_id}" and report[-1][2] in ("pending", "final")


def test_an_upload_whose_node_is_killed_after_226_is_processed_once_by_another_node(
    ftp_cluster: Cluster,
) -> None:
    rows = 1000
    # Small groups: node a is still early in the file when it is killed.
    a, b = ftp_cluster.start(("a", "all", SMALL_GROUPS), ("b", "all", {}))
    _upload(a, "big.csv", rows)
    a.proc.kill()  # SIGKILL right after the 226
    a.proc.wait(10)
    batch_id = _batch(ftp_cluster, "big.csv")  # recorded before the 226
    assert len(_stored_lines(ftp_cluster, batch_id)) < rows, "a finished before the kill"
    b.wait_for_log(rf"batch {batch_id} \(big\.csv\) taken by node b")
    _assert_once_and_served(ftp_cluster, b, "big.csv", rows)
    assert ftp_cluster.rows("SELECT state FROM batches WHERE id = :b", b=batch_id)[0][0] in (
        "accepted",
        "final",
    )


def test_an_upload_is_processed_once_by_its_node_while_another_node_restarts(
    ftp_cluster: Cluster,
) -> None:
    rows = 20_000  # 200 groups: a is still at work when b is back
    a, b = ftp_cluster.start(("a", "all", SMALL_GROUPS), ("b", "all", {}))
    _upload(a, "busy.csv", rows)
    batch_id = _batch(ftp_cluster, "busy.csv")
    eventually(
        lambda: len(_stored_lines(ftp_cluster, batch_id)) >= 100, 10, 0.01, "a at work"
    )
    assert b.stop() == 0
    [b] = ftp_cluster.start(("b", "all", {}))  # its start-up recovery looks at the FTP area
    state = ftp_cluster.rows("SELECT state FROM batches WHERE id = :b", b=batch_id)[0][0]
    assert state == "processing", "a was through before b was back: no overlap to test"
    # b serves what a wrote; a alone processed it.
    _assert_once_and_served(ftp_cluster, b, "busy.csv", rows)
    assert not [line for line in b.log if batch_id in line], "b touched a's batch"


def test_a_batch_paused_by_a_stopping_node_is_resumed_by_another_node(
    ftp_cluster: Cluster,
) -> None:
    rows = 3000  # 30 groups: the stop lands long before a is through
    a, b = ftp_cluster.start(("a", "all", SMALL_GROUPS), ("b", "all", {}))
    _upload(a, "paused.csv", rows)
    batch_id = _batch(ftp_cluster, "paused.csv")
    eventually(
        lambda: len(_stored_lines(ftp_cluster, batch_id)) >= 100,
        10,
        0.01,
        "the first rows committed by a",
    )
    assert a.stop() == 0  # SIGTERM: the batch pauses after its group in flight
    paused = int(a.wait_for_log(r"paused after line (\d+)")[1])
    assert paused < rows + 1
    b.wait_for_log(rf"batch {batch_id} \(paused\.csv\) resumed after line {paused};")
    _assert_once_and_served(ftp_cluster, b, "paused.csv", rows)


def test_a_mail_whose_node_is_killed_after_250_is_sent_and_answered_once(
    tmp_path: Path, pg_url: str, servers: list[Server], sink: tuple[Sink, int]
) -> None:
    relay, relay_port = sink
    cluster = Cluster(
        tmp_path,
        pg_url,
        servers,
        SMSHUB_SMTP__ENABLED="true",
        SMSHUB_SMTP__PORT="0",
        SMSHUB_SMTP__RELAY_HOST="127.0.0.1",
        SMSHUB_SMTP__RELAY_PORT=str(relay_port),
        SMSHUB_SMTP__RELAY_SECURITY="none",
        SMSHUB_SMTP__FINAL_RECEIPT_INTERVAL="0.2",
    )
    try:
        cluster.setup(
            pg_url, MailSettings(0, allowed_senders=(SENDER,), receipts=True, final_receipts=True)
        )
        # a: the listener only, claiming nothing; b: the outbox and the receipts job.
        a, _ = cluster.start(("a", "ingress", {}), ("b", "dispatch", {}))
        mail = EmailMessage()
        mail["From"], mail["To"], mail["Subject"] = SENDER, "0821234567@sms.localhost", "hi"
        mail["Message-ID"] = "<once@acme.co.za>"
        mail.set_content("Your parcel is ready")
        with smtplib.SMTP("127.0.0.1", a.listening("SMTP"), timeout=10) as client:
            client.ehlo()
            client.mail(SENDER)
            client.rcpt("0821234567@sms.localhost")
            client.rcpt("0821234568@sms.localhost")
            code, text = client.data(mail.as_bytes())
            a.proc.kill()  # SIGKILL right after the 250
        assert code == 250, text
        mail_id = text.decode().split("queued as ")[1].split()[0]
        receipt, final = relay.next(), relay.next()
        assert receipt["Subject"] == "SMS receipt: hi"
        assert final["Subject"] == "SMS delivery report: hi"
        assert receipt["In-Reply-To"] == final["In-Reply-To"] == "<once@acme.co.za>"
        assert {"delivered"} == {
            str(s)
            for (s,) in cluster.rows("SELECT status FROM messages WHERE batch_id = :m", m=mail_id)
        }
        submitted = cluster.rows(
            "SELECT e.message_id FROM message_events e JOIN messages m ON m.id = e.message_id"
            " WHERE m.batch_id = :m AND e.status = 'submitted'",
            m=mail_id,
        )
        assert len(submitted) == 2 == len(set(submitted))  # each SMS sent once
        time.sleep(1)  # five receipt-job rounds: nothing more is mailed
        assert relay.mails.empty()
    finally:
        cluster.engine.dispose()
