"""Receipts that always settle across a crash: `smshub serve` killed with SIGKILL while
messages are being accepted and sent, then restarted on the same spool; every message it
acknowledged reaches a final status and none is left waiting as `submitted`."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx
import pytest

from hub.model import FINAL_STATUSES
from tests.e2e.load import post_then_kill
from tests.e2e.test_cli_and_crash import Server, env_for, run, wait_delivered
from tests.polling import eventually

pytestmark = pytest.mark.slow

FINAL = {s.value for s in FINAL_STATUSES}


def stored_statuses(db_path: Path) -> dict[str, str]:
    with sqlite3.connect(db_path, timeout=10) as db:
        return dict(db.execute("SELECT id, status FROM messages").fetchall())


def test_kill_9_after_the_400th_answer_leaves_no_message_waiting_for_its_report(
    tmp_path: Path, servers: list[Server]
) -> None:
    data = tmp_path / "var"
    # Reports a second after submission, as the default simulator: at the kill many
    # messages have been submitted and their reports are still owed.
    env = env_for(data, SMSHUB_SIMULATOR__REPORT_DELAY="1.0",
                  SMSHUB_SIMULATOR__UNDELIVERED_SUFFIXES="13")
    assert run(env, "account", "create", "acme", "--credits", "1000").returncode == 0
    key = run(env, "account", "api-key", "acme").stdout.strip()
    first = Server(env)
    servers.append(first)
    # A node of two processes answers before its dispatch process has started: one
    # message delivered first, so that the burst meets a running dispatcher.
    warm = httpx.post(f"{first.url}/v1/messages", json={"to": "0821234500", "text": "w"},
                      headers={"Authorization": f"Bearer {key}"}, timeout=30)
    assert warm.status_code == 202, warm.text
    wait_delivered(first.url, key, warm.json()["id"])
    acked = post_then_kill(first, key, 500, 400, lambda n: f"08212345{n % 100:02d}")
    assert len(acked) >= 400
    before = stored_statuses(data / "spool.db")
    assert "submitted" in before.values(), "the kill left no report owed"
    second = Server(env)
    servers.append(second)

    def settled() -> bool:
        now = stored_statuses(data / "spool.db")
        return all(now.get(mid) in FINAL for mid in acked) and set(now.values()) <= FINAL

    eventually(settled, 60, 0.2, "every message final")
    final = stored_statuses(data / "spool.db")
    assert {final[mid] for mid in acked} <= {"delivered", "undelivered"}
    assert "submitted" not in final.values()
    assert second.stop() == 0
