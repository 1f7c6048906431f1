"""PostgreSQL stopped (immediate: as if it crashed) under load and started again: while
it is down every protocol answers a temporary error naming it (an FTP login too), never
a 500 or a dropped connection; nothing acknowledged is lost; and the same hub, not
restarted, reconnects, accepts, dispatches and is ready again by itself."""

from __future__ import annotations

import ftplib
import threading
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from tests.faults import cluster
from tests.faults.conftest import MakeHub, assert_said_not_dumped, open_account
from tests.faults.probes import Probes, is_temporary
from tests.polling import eventually

pytestmark = pytest.mark.postgres

UNREACHABLE = "the spool's database cannot be reached"


@pytest.fixture
def database() -> Iterator[cluster.Cluster]:
    yield from cluster.started()


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
