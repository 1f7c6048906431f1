"""PostgreSQL stopped (immediate: as if it crashed) under load and started again: while
it is down every protocol answers a temporary error naming it (an FTP login too), never
a 500 or a dropped connection; nothing acknowledged is lost (an FTP upload answered 226
is processed whole once the database is back, whether it was cut off part-way or not
read yet); a webhook delivered while it is away is recorded once it is back, not
delivered again; and the same hub, not restarted, reconnects, accepts, dispatches and is
ready again by itself."""

from __future__ import annotations

import asyncio
import csv
import ftplib
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy

from hub.batches import Batch
from tests.faults import cluster
from tests.faults.conftest import MakeHub, assert_said_not_dumped, open_account
from tests.faults.probes import Probes, is_temporary
from tests.hubthread import HubThread
from tests.polling import eventually
from tests.receiver import Receiver, Script

pytestmark = pytest.mark.postgres

UNREACHABLE = "the spool's database cannot be reached"


@pytest.fixture
def database() -> Iterator[cluster.Cluster]:
    yield from cluster.started()


@pytest.fixture
def make_hub(database: cluster.Cluster, make_hub: MakeHub) -> MakeHub:
    """The hubs are stopped while their database still runs. Torn down after it, a hub
    with a write in flight retried it against a closed server until its dispatcher's
    shutdown_timeout (10 s), in about one run in four."""
    return make_hub


class Load:
    """REST submissions from a thread until stopped, every status counted; the probes
    keep each acknowledged id."""

    def __init__(self, probes: Probes) -> None:
        self.probes = probes
        self.statuses: Counter[int | str] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="load")

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                answer = self.probes.rest("under load")
            except Exception as exc:  # a dropped connection is a failure of the test
                self.statuses[type(exc).__name__] += 1
                continue
            self.statuses[answer.status_code] += 1
            if answer.status_code == 503:
                self._stop.wait(0.02)

    def seen(self, status: int, more_than: int = 0) -> bool:
        return self.statuses[status] > more_than


def test_postgresql_stopped_mid_load_gets_temporary_errors_and_the_hub_recovers_by_itself(
        make_hub: MakeHub, database: cluster.Cluster, caplog: pytest.LogCaptureFixture
) -> None:
    probes = open_account(make_hub(spool={"url": database.url}))
    unused = probes.hub.account("beta")  # a key no request has used: not in the cache
    with Load(probes) as load:
        eventually(lambda: load.seen(202, 20), 20, what="load accepted")
        database.stop()
        eventually(lambda: load.seen(503), 20, what="load refused for now")
        rest = probes.rest("while down")
        assert is_temporary(rest, UNREACHABLE), rest.text
        xml = probes.xml("while down")
        assert is_temporary(xml, UNREACHABLE), xml.text
        looked_up = httpx.get(f"{probes.hub.url}/v1/messages/{probes.acked_ids[0]}",
                              headers=probes.auth, timeout=30)
        assert is_temporary(looked_up, UNREACHABLE), looked_up.text
        unchecked = httpx.post(f"{probes.hub.url}/v1/messages", timeout=30,
                               json={"to": "0821234567", "text": "x"},
                               headers={"Authorization": f"Bearer {unused}"})
        assert is_temporary(unchecked, UNREACHABLE), unchecked.text
        code, words = probes.mail("while down")
        assert code == 451 and UNREACHABLE in words, words
        with pytest.raises(ftplib.error_temp, match=f"^421 .*{UNREACHABLE}"):
            probes.ftp()  # a login not cached yet: its password cannot be checked
        assert probes.readyz().status_code == 503
        accepted = load.statuses[202]

        database.start()
        eventually(lambda: probes.readyz().status_code == 200, 30, what="ready again")
        eventually(lambda: load.seen(202, accepted + 20), 20, what="load accepted again")
    assert set(load.statuses) == {202, 503}, load.statuses  # no 500, no dropped connection
    assert probes.mail("after")[0] == 250
    probes.ftp().quit()
    probes.all_delivered(timeout=60)
    assert_said_not_dumped(caplog)


# --- an FTP batch while the database is away ----------------------------------------------

ROWS = 1000


def _upload(probes: Probes) -> None:
    body = "to,text\n" + "".join(f"08{2000000 + i:08d},row {i}\n" for i in range(ROWS))
    assert probes.store("big.csv", body.encode()).startswith("226")


def _assert_processed_once(hub: HubThread) -> None:
    """One result file listing every row accepted, nothing `not_processed`, and each
    row's message stored once."""
    result = hub.config.data_dir.resolve() / "ftp" / "acme" / "results" / "big.result.csv"
    eventually(result.exists, 60, what="the result file")
    with result.open(encoding="utf-8-sig", newline="") as handle:
        listed = list(csv.reader(handle))[1:]
    assert [r[3] for r in listed[:-1]] == ["accepted"] * ROWS, listed[-2:]
    assert [int(r[0]) for r in listed[:-1]] == list(range(2, ROWS + 2))
    engine = hub.spool.db.engine  # type: ignore[attr-defined]
    with engine.connect() as conn:
        lines = conn.execute(sqlalchemy.text(
            "SELECT batch_line FROM messages WHERE source = 'ftp' ORDER BY batch_line"
        )).scalars().all()
    assert lines == list(range(2, ROWS + 2))


def _away_then_back(database: cluster.Cluster, away: threading.Event) -> None:
    assert away.wait(30), "the database was never stopped"
    time.sleep(1.0)  # well past the group's retries (fault_config: one, after 0.1 s)
    database.start()


def test_an_ftp_batch_cut_off_by_postgresql_going_away_carries_on_once_it_is_back(
        make_hub: MakeHub, database: cluster.Cluster, caplog: pytest.LogCaptureFixture
) -> None:
    hub = make_hub(spool={"url": database.url}, ftp={"rows_per_group": 100})
    probes = open_account(hub)
    away = threading.Event()

    async def stop_after_first_group(batch: Batch) -> None:
        if not away.is_set():
            await asyncio.to_thread(database.stop)
            away.set()

    assert hub.hub.ftp_drop is not None
    hub.hub.ftp_drop.processor.group_hook = stop_after_first_group
    _upload(probes)
    _away_then_back(database, away)
    _assert_processed_once(hub)
    assert_said_not_dumped(caplog)


def test_an_ftp_upload_answered_226_just_before_postgresql_goes_away_is_processed_once_back(
        make_hub: MakeHub, database: cluster.Cluster, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture
) -> None:
    hub = make_hub(spool={"url": database.url})
    probes = open_account(hub)
    away = threading.Event()
    settle = hub.spool.settle_batch_content

    def away_first(*args: Any) -> Any:
        # Recorded and answered 226; the database goes before the file is read.
        if not away.is_set():
            database.stop()
            away.set()
        return settle(*args)

    monkeypatch.setattr(hub.spool, "settle_batch_content", away_first)
    _upload(probes)
    _away_then_back(database, away)
    _assert_processed_once(hub)
    assert_said_not_dumped(caplog)


# --- an outbox delivery while the database is away ----------------------------------------


def test_a_webhook_delivered_while_postgresql_is_away_is_recorded_once_back_not_sent_again(
        make_hub: MakeHub, database: cluster.Cluster, receiver: Receiver
) -> None:
    lease = 6.0  # an item not recorded is delivered again once this has run out
    hub = make_hub(spool={"url": database.url},
                   webhooks={"allow_networks": ["127.0.0.1/32"], "poll_interval": 0.05},
                   outbox={"poll_interval": 0.05, "lease_seconds": lease})
    key = hub.account("acme", credits="10")
    auth = {"Authorization": f"Bearer {key}"}
    hook = httpx.post(f"{hub.url}/v1/webhooks", headers=auth, timeout=30,
                      json={"url": receiver.url("/hook"), "events": ["message.submitted"]})
    assert hook.status_code == 201, hook.text
    # The receiver answers after 1.5 s: the database goes away meanwhile, so the hub
    # has the answer while it cannot record it.
    receiver.scripts["/hook"] = Script(delay=1.5)
    sent = httpx.post(f"{hub.url}/v1/messages", headers=auth, timeout=30,
                      json={"to": "0821234567", "text": "hi"})
    assert sent.status_code == 202, sent.text
    eventually(lambda: receiver.at("/hook"), 30, 0.01, "the event on its way")
    database.stop()
    time.sleep(2.0)  # the answer came while the database was away
    database.start()
    time.sleep(lease + 2.0)  # past the lease: a result not recorded would be sent again
    ids = Counter(h.headers["webhook-id"] for h in receiver.at("/hook"))
    assert list(ids.values()) == [1], ids
