"""Several `smshub serve` processes on one spool (issue #16): an ingress node and a
dispatch node sharing the work, `smshub nodes` listing them, a second node name refused
on a SQLite file, and two dispatch nodes on PostgreSQL each sending disjoint messages."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy
from sqlalchemy.engine import make_url

from tests.e2e.test_cli_and_crash import SMSHUB, Server, env_for, run, wait_delivered
from tests.polling import eventually

pytestmark = pytest.mark.slow


class RoleServer(Server):
    """`smshub serve --role ROLE` in a subprocess."""

    def __init__(self, env: dict[str, str], role: str) -> None:
        self.proc = subprocess.Popen([*SMSHUB, "serve", "--role", role], env=env,
                                     stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                     text=True)
        self.port = self._wait_for_port()


def _account(env: dict[str, str]) -> str:
    assert run(env, "account", "create", "acme", "--credits", "100000").returncode == 0
    return run(env, "account", "api-key", "acme").stdout.strip()


def _post(server: Server, key: str, count: int) -> list[str]:
    batch = {"messages": [{"to": "0821234567", "text": f"m{i}"} for i in range(count)]}
    answer = httpx.post(f"{server.url}/v1/messages", json=batch,
                        headers={"Authorization": f"Bearer {key}"}, timeout=30)
    assert answer.status_code == 202, answer.text
    return [r["id"] for r in answer.json()["results"]]


def _nodes(env: dict[str, str]) -> list[dict[str, object]]:
    listed = run(env, "nodes", "--json")
    assert listed.returncode == 0, listed.stderr
    found: list[dict[str, object]] = json.loads(listed.stdout)
    return found


def _split_node(env: dict[str, str], servers: list[Server]) -> tuple[Server, Server, str]:
    key = _account(env)
    dispatch = RoleServer(env, "dispatch")
    servers.append(dispatch)
    ingress = RoleServer(env, "ingress")
    servers.append(ingress)
    return ingress, dispatch, key


def test_message_posted_to_an_ingress_node_is_delivered_by_the_dispatch_node(
    tmp_path: Path, servers: list[Server]
) -> None:
    env = env_for(tmp_path / "var", SMSHUB_HUB__HEARTBEAT_INTERVAL="0.5")
    ingress, dispatch, key = _split_node(env, servers)
    assert ingress.wait_for_log(r"smshub node e2e started: (.*)").group(1) == \
        "heartbeat, callbacks, http"  # no dispatcher, carriers, upkeep or outbox
    assert dispatch.wait_for_log(r"smshub node e2e started: (.*)").group(1) == \
        "heartbeat, dispatcher, maintenance, outbox, http"
    [message_id] = _post(ingress, key, 1)
    assert wait_delivered(ingress.url, key, message_id)["status"] == "delivered"
    # The dispatch node serves health and metrics, not the API.
    assert httpx.get(f"{dispatch.url}/healthz").status_code == 200
    assert httpx.get(f"{dispatch.url}/readyz").status_code == 200
    assert httpx.get(f"{dispatch.url}/v1/messages",
                     headers={"Authorization": f"Bearer {key}"}).status_code == 404
    rows = _nodes(env)
    assert {(r["name"], r["role"], r["state"]) for r in rows} == {
        ("e2e", "ingress", "live"), ("e2e", "dispatch", "live")}
    assert {r["pid"] for r in rows} == {ingress.proc.pid, dispatch.proc.pid}
    # A clean stop takes the node's row with it.
    assert ingress.stop() == 0
    assert [r["role"] for r in _nodes(env)] == ["dispatch"]


def test_a_second_node_name_on_a_sqlite_spool_is_refused_fast_and_says_why(
    tmp_path: Path, servers: list[Server]
) -> None:
    env = env_for(tmp_path / "var")
    first = Server(env)
    servers.append(first)
    started = time.monotonic()
    other = run({**env, "SMSHUB_HUB__NODE": "other"}, "serve")
    assert time.monotonic() - started < 15
    assert other.returncode == 1
    assert "in use by node 'e2e'" in other.stderr and "this node is 'other'" in other.stderr
    # Nor may a second process of the same node dispatch beside the first.
    twin = run(env, "serve", "--role", "dispatch")
    assert twin.returncode == 1
    assert "already has a dispatching process of node 'e2e'" in twin.stderr
    # A node that died holds nothing: the same name, or another, may start at once.
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(10)
    renamed = Server({**env, "SMSHUB_HUB__NODE": "other"})
    servers.append(renamed)
    assert renamed.stop() == 0
    again = Server(env)
    servers.append(again)
    assert httpx.get(f"{again.url}/healthz").status_code == 200


def test_a_node_in_the_table_from_another_host_refuses_a_sqlite_start(
    tmp_path: Path, servers: list[Server]
) -> None:
    """The file lock holds on one host only; a fresh heartbeat from another host (the
    file shared over a network file system) refuses the start too."""
    env = env_for(tmp_path / "var")
    first = Server(env)
    servers.append(first)
    assert first.stop() == 0
    db = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'var' / 'spool.db'}")
    now = int(time.time() * 1_000_000)
    with db.begin() as conn:
        conn.execute(sqlalchemy.text(
            "INSERT INTO nodes VALUES ('far', 'all', 4242, 'elsewhere', :t, :t, '0')"),
            {"t": now})
    db.dispose()
    refused = run(env, "serve")
    assert refused.returncode == 1
    assert "in use by node 'far' on host elsewhere" in refused.stderr


@pytest.mark.postgres
def test_ingress_and_two_dispatch_nodes_on_postgresql_send_each_message_once(
    tmp_path: Path, servers: list[Server], pg_url: str
) -> None:
    data = tmp_path / "var"  # shared: every node needs the same secret.key
    env = env_for(data, SMSHUB_SPOOL__URL=pg_url, SMSHUB_DISPATCHER__BATCH_SIZE="10",
                  SMSHUB_HUB__NODE="in")
    key = _account(env)
    for name in ("d1", "d2"):
        node = RoleServer({**env, "SMSHUB_HUB__NODE": name}, "dispatch")
        servers.append(node)
    ingress = RoleServer(env, "ingress")
    servers.append(ingress)
    ids = _post(ingress, key, 1000)
    engine = sqlalchemy.create_engine(make_url(pg_url).set(drivername="postgresql+psycopg"),
                                      poolclass=sqlalchemy.NullPool)

    def events(status: str) -> list[tuple[str, str]]:
        with engine.connect() as conn:
            return [(r[0], r[1]) for r in conn.execute(sqlalchemy.text(
                "SELECT message_id, detail FROM message_events WHERE status = :s"),
                {"s": status})]

    try:
        eventually(lambda: len(events("submitted")) >= len(ids), 60, 0.2,
                   "every message submitted")
        submitted = [m for m, _ in events("submitted")]
        sending = events("sending")
    finally:
        engine.dispose()
    assert sorted(submitted) == sorted(ids)  # each once, none twice
    assert len(sending) == len(ids)  # each claimed once
    by = {detail.rsplit(" by ", 1)[1] for _, detail in sending}
    assert by == {"d1", "d2"}  # both shared the work
    rows = {(r["name"], r["role"], r["state"]) for r in _nodes(env)}
    assert rows == {("in", "ingress", "live"), ("d1", "dispatch", "live"),
                    ("d2", "dispatch", "live")}
    # A second dispatcher under a name already dispatching is refused: it would release
    # the first one's leases at its start.
    twin = run({**env, "SMSHUB_HUB__NODE": "d1"}, "serve", "--role", "all")
    assert twin.returncode == 1
    assert "node 'd1' already has a dispatching process" in twin.stderr
