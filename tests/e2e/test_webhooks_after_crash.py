"""Webhook events survive kill -9: `smshub serve` sends messages whose events cannot be
delivered (the receiver is down), is SIGKILLed with events waiting in the outbox and
more being made, and once restarted with the receiver up, every event of every
acknowledged message arrives (each a verified signature, no event lost; a repeat only
with the same webhook-id)."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest

from tests.e2e.load import post_then_kill
from tests.e2e.test_cli_and_crash import Server, env_for, run, wait_delivered
from tests.polling import eventually
from tests.receiver import Receiver, verified

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_events_owed_at_a_kill_are_all_delivered_after_the_restart(
    tmp_path: Path, servers: list[Server]
) -> None:
    data = tmp_path / "var"
    env = env_for(data, SMSHUB_WEBHOOKS__ALLOW_NETWORKS="127.0.0.1/32",
                  SMSHUB_OUTBOX__LEASE_SECONDS="600",  # only the restart may take them back
                  SMSHUB_WEBHOOKS__RETRY_BASE="0.2", SMSHUB_WEBHOOKS__RETRY_CAP="0.5",
                  SMSHUB_WEBHOOKS__POLL_INTERVAL="0.05")
    assert run(env, "account", "create", "acme", "--credits", "1000").returncode == 0
    key = run(env, "account", "api-key", "acme").stdout.strip()
    port = free_port()  # nothing listens there yet: every delivery fails and waits
    url = f"http://127.0.0.1:{port}/hook"
    added = run(env, "webhook", "add", "acme", url, "--events",
                "message.submitted,message.delivered", "--json")
    assert added.returncode == 0, added.stderr
    secret = httpx.Response(200, content=added.stdout).json()["secret"]
    first = Server(env)
    servers.append(first)
    acked = post_then_kill(first, key, 80, 60, lambda n: f"08212345{n % 100:02d}")
    assert len(acked) >= 60
    receiver = Receiver(port)
    try:
        second = Server(env)
        servers.append(second)
        for message_id in acked:
            wait_delivered(second.url, key, message_id, timeout=60)

        def every_event() -> bool:
            seen = {(h.event["data"]["id"], h.event["type"]) for h in receiver.at("/hook")}
            return all((m, t) in seen for m in acked
                       for t in ("message.submitted", "message.delivered"))

        eventually(every_event, 60, 0.2, "both events of every acknowledged message")
        hits = receiver.at("/hook")
        events = [verified(h, secret) for h in hits]
        by_id: dict[str, tuple[str, str]] = {}
        for hit, event in zip(hits, events, strict=True):
            key_of = (event["data"]["id"], event["type"])
            # A repeat (delivered, then the kill before it was recorded) keeps its id.
            assert by_id.setdefault(hit.headers["webhook-id"], key_of) == key_of
        assert second.stop() == 0
    finally:
        receiver.close()
