"""The wall clock stepped by an hour under a running `smshub serve` (libfaketime in its
process; the monotonic clock untouched, as with a real step), forwards and backwards.
The hub trusts the wall clock for what people scheduled, so a step forward sends what
fell due within the hour and a step back makes the rest wait; but nothing is lost or
sent twice: messages being submitted at the step are not taken from their dispatcher
(their leases only look expired), and the timers that drive dispatch and upkeep keep
their rhythm (upkeep still settles a missing delivery report after the step back)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_cli_and_crash import Server, env_for, run
from tests.faults import faketime
from tests.polling import eventually
from tests.providers import BulkSms, FakeServer, Reply

pytestmark = pytest.mark.slow
HOUR = 3600

CONFIG = """
[routing]
default_carrier = "bulk"
[maintenance]
interval = 0.3
[dispatcher]
lease_seconds = 60
[carriers.bulk]
type = "http"
template = "bulksms"
url = "{url}/eapi/submission/send_sms/2/2.0"
keys = {{ username = "{user}", password = "{password}" }}
timeout = 20
receipt_timeout = {receipt_timeout}
"""


@pytest.fixture
def provider() -> Iterator[BulkSms]:
    fake = BulkSms()
    server = FakeServer(fake.app()).start()
    fake.url = server.url
    yield fake
    server.stop()


class SteppedHub:
    """`smshub serve` on a stepped clock, with account acme and its API key."""

    def __init__(self, server: Server, clock: faketime.SteppedClock, key: str) -> None:
        self.server, self.clock, self.key = server, clock, key

    def send(self, text: str, send_at: datetime | None = None, to: str = "0821234567"
             ) -> str:
        body: dict[str, str] = {"to": to, "text": text}
        if send_at is not None:
            body["send_at"] = send_at.isoformat()
        answer = httpx.post(f"{self.server.url}/v1/messages", json=body, timeout=30,
                            headers={"Authorization": f"Bearer {self.key}"})
        assert answer.status_code == 202, answer.text
        return str(answer.json()["id"])

    def status(self, message_id: str) -> str:
        answer = httpx.get(f"{self.server.url}/v1/messages/{message_id}", timeout=30,
                           headers={"Authorization": f"Bearer {self.key}"})
        return str(answer.json()["status"])


@pytest.fixture
def stepped_hub(tmp_path: Path, provider: BulkSms, servers: list[Server]
                ) -> Callable[..., SteppedHub]:
    reason = faketime.missing()
    if reason:
        pytest.skip(reason)

    def start(receipt_timeout: float = 0) -> SteppedHub:
        config = tmp_path / "hub.toml"
        config.write_text(CONFIG.format(url=provider.url, user=provider.username,
                                        password=provider.password,
                                        receipt_timeout=receipt_timeout))
        data = tmp_path / "data"
        plain = env_for(data, SMSHUB_CONFIG=str(config))
        assert run(plain, "account", "create", "acme", "--credits", "100").returncode == 0
        key = run(plain, "account", "api-key", "acme").stdout.strip()
        clock = faketime.SteppedClock(tmp_path / "offset")
        servers.append(Server({**plain, **clock.env()}))
        return SteppedHub(servers[-1], clock, key)

    return start


def sent(provider: BulkSms) -> Counter[str]:
    """How many times the provider was sent each text."""
    return Counter(str(seen.body.get("message")) for seen in provider.requests)


def test_a_step_forward_mid_submission_sends_nothing_twice(
        stepped_hub: Callable[..., SteppedHub], provider: BulkSms) -> None:
    hub = stepped_hub()
    provider.script.extend(Reply(delay=2.0) for _ in range(4))  # the provider is slow
    ids = [hub.send(f"in flight {i}", to=f"082123456{i}") for i in range(4)]
    eventually(lambda: len(provider.requests) == 4, 20, what="all four being submitted")
    hub.clock.step_to(HOUR)  # their 60 s leases now look an hour old
    eventually(lambda: all(hub.status(m) == "submitted" for m in ids), 20,
               what="the slow submissions recorded")
    later = hub.send("after the step")
    eventually(lambda: hub.status(later) == "submitted", 20, what="dispatch after the step")
    assert sent(provider) == {**{f"in flight {i}": 1 for i in range(4)},
                              "after the step": 1}


def test_scheduled_messages_follow_the_clock_both_ways_and_upkeep_keeps_running(
        stepped_hub: Callable[..., SteppedHub], provider: BulkSms) -> None:
    hub = stepped_hub(receipt_timeout=2)
    now = datetime.now(UTC)
    half, later = (hub.send("due in 30 min", now + timedelta(minutes=30)),
                   hub.send("due in 90 min", now + timedelta(minutes=90)))
    assert hub.status(half) == hub.status(later) == "scheduled"

    hub.clock.step_to(HOUR)  # forwards: the 30-minute one is now overdue and goes
    eventually(lambda: hub.status(half) != "scheduled", 20, what="the overdue one sent")
    assert hub.status(later) == "scheduled"

    hub.clock.step_to(0)  # backwards an hour: the 90-minute one waits again
    now_id = hub.send("now")
    eventually(lambda: hub.status(now_id) != "queued" and "now" in sent(provider), 20,
               what="dispatch after the step back")
    # Upkeep (on its own timer) still runs: the carrier never reports, so after its
    # 2 s receipt timeout the message fails as no_delivery_report.
    eventually(lambda: hub.status(now_id) == "failed", 20, what="upkeep after the step back")
    assert hub.status(later) == "scheduled"
    assert sent(provider) == {"due in 30 min": 1, "now": 1}
