"""`smshub serve` of role all as two processes (`[hub] processes`, hub.supervisor): an
ingress parent and a dispatch child that the parent wakes at each commit, that stops with
a clean stop and dies with a killed parent, and that a restart right away replaces; the
child's carrier figures and counters are in the node's /metrics."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_cli_and_crash import Server, env_for, run, wait_delivered
from tests.e2e.test_nodes import _nodes
from tests.polling import eventually

pytestmark = pytest.mark.slow


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (dead, not yet reaped by its parent's own end) counts as gone.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _send(server: Server, key: str, text: str) -> str:
    answer = httpx.post(
        f"{server.url}/v1/messages",
        json={"to": "0821234567", "text": text},
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert answer.status_code == 202, answer.text
    message_id: str = answer.json()["id"]
    return message_id


def _roles(env: dict[str, str]) -> dict[str, int]:
    return {str(n["role"]): int(str(n["pid"])) for n in _nodes(env) if n["state"] == "live"}


def test_two_processes_deliver_and_stop_together(tmp_path: Path, servers: list[Server]) -> None:
    # A poll of a minute: a message delivered within seconds was woken through the pipe.
    env = env_for(
        tmp_path / "var", SMSHUB_HUB__PROCESSES="2", SMSHUB_DISPATCHER__POLL_INTERVAL="60"
    )
    assert run(env, "account", "create", "acme", "--credits", "100").returncode == 0
    key = run(env, "account", "api-key", "acme").stdout.strip()
    server = Server(env)
    servers.append(server)
    roles = eventually(
        lambda: len(found := _roles(env)) == 2 and found, 20, 0.1, "both processes' heartbeats"
    )
    assert roles["ingress"] == server.proc.pid and roles["dispatch"] != server.proc.pid
    started = time.monotonic()
    for i in range(3):
        assert wait_delivered(server.url, key, _send(server, key, f"m{i}"))["status"] == "delivered"
    assert time.monotonic() - started < 20  # far below three polls of a minute
    # The node's /metrics and `smshub carriers` show the dispatch process's figures,
    # though the listeners are in the other process.
    def dispatch_figures() -> str | None:
        text = httpx.get(f"{server.url}/metrics", timeout=10).text
        wanted = ('smshub_carrier{carrier="simulator",figure="up"} 1.0',
                  'smshub_dispatched_total{carrier="simulator",verdict="submitted"} 3')
        turns = [line for line in text.splitlines()
                 if line.startswith("smshub_spool_writer_turns_total")]
        # Both processes' turns at the one writer: intake's commits, the dispatcher's.
        both = sorted(line.partition(" ")[0] for line in turns
                      if float(line.rpartition(" ")[2]) > 0) == [
            'smshub_spool_writer_turns_total{process="dispatch"}',
            'smshub_spool_writer_turns_total{process="ingress"}']
        return text if all(w in text for w in wanted) and both else None

    eventually(dispatch_figures, 10, 0.2, "the dispatch process's figures in /metrics")
    port = server.url.rpartition(":")[2]
    carriers = run({**env, "SMSHUB_HTTP__PORT": port}, "carriers", "--json")
    assert carriers.returncode == 0 and '"up": 1.0' in carriers.stdout, carriers.stdout
    assert server.stop() == 0  # SIGTERM: both stop cleanly
    assert not _alive(roles["dispatch"])
    assert _nodes(env) == []  # each removed its row


def test_a_killed_parent_takes_its_child_and_a_restart_delivers(
    tmp_path: Path, servers: list[Server]
) -> None:
    env = env_for(tmp_path / "var", SMSHUB_HUB__PROCESSES="2")
    assert run(env, "account", "create", "acme", "--credits", "100").returncode == 0
    key = run(env, "account", "api-key", "acme").stdout.strip()
    first = Server(env)
    servers.append(first)
    child = eventually(lambda: _roles(env).get("dispatch"), 20, 0.1, "the dispatch process")
    first.stop(signal.SIGKILL)
    eventually(lambda: not _alive(child), 10, 0.05, "the child gone with its parent")
    second = Server(env)  # at once: its child waits for the dead one's lock if need be
    servers.append(second)
    assert wait_delivered(second.url, key, _send(second, key, "after"))["status"] == "delivered"
