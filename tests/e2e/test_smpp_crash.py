"""Receipts over SMPP across a crash: `smshub serve` bound to an SMSC is killed with
SIGKILL while submissions and receipts are in flight; the SMSC redelivers every receipt
the hub had not acknowledged, and after the restart every acknowledged message is final
with its receipt applied exactly once."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.load import post_then_kill
from tests.e2e.test_cli_and_crash import Server, env_for, run
from tests.polling import eventually
from tests.smsc.scripted import ScriptedSmsc
from tests.smsc.thread import smsc_in_thread

pytestmark = pytest.mark.slow


@pytest.fixture
def smsc() -> Iterator[ScriptedSmsc]:
    # Receipts come a little after each answer, so the kill finds some in flight; the
    # ones the hub never acknowledged are sent again when it binds again.
    with smsc_in_thread(receipt_mode="after", receipt_delay=0.2,
                        redeliver_unacked=True) as server:
        yield server


def delivered_events(db_path: Path) -> tuple[dict[str, str], dict[str, int]]:
    with sqlite3.connect(db_path, timeout=10) as db:
        statuses = dict(db.execute("SELECT id, status FROM messages").fetchall())
        counts = dict(db.execute("SELECT message_id, count(*) FROM message_events "
                                 "WHERE status = 'delivered' GROUP BY message_id").fetchall())
    return statuses, counts


def test_kill_9_with_receipts_in_flight_applies_each_once_and_ends_every_message(
    tmp_path: Path, smsc: ScriptedSmsc,
    servers: list[Server],
) -> None:
    server = smsc
    data = tmp_path / "var"
    toml = tmp_path / "hub.toml"
    toml.write_text(
        '[routing]\ndefault_carrier = "smsc"\n'
        f'[carriers.smsc]\ntype = "smpp"\nhost = "127.0.0.1"\nport = {server.port}\n'
        'system_id = "hub"\npassword = "secret"\nwindow = 20\nreconnect_min = 0.1\n')
    env = env_for(data, SMSHUB_CONFIG=str(toml))
    assert run(env, "account", "create", "acme", "--credits", "1000").returncode == 0
    key = run(env, "account", "api-key", "acme").stdout.strip()
    first = Server(env)
    servers.append(first)
    acked = post_then_kill(first, key, 300, 200, lambda n: f"0821{n:06d}")
    assert len(acked) >= 200
    second = Server(env)
    servers.append(second)

    def settled() -> bool:
        statuses, _ = delivered_events(data / "spool.db")
        return all(statuses.get(mid) == "delivered" for mid in acked)

    eventually(settled, 60, 0.2, "every acknowledged message delivered")
    statuses, counts = delivered_events(data / "spool.db")
    assert {counts.get(mid) for mid in acked} == {1}  # each receipt applied exactly once
    assert "submitted" not in statuses.values()
    assert second.stop() == 0
