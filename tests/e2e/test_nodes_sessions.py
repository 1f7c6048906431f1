"""Clickatell sessions on several nodes of one PostgreSQL spool, as behind an HTTP load
balancer (issue #13, docs/nodes.md): a session id that `auth` gave on one node is taken
by every other, for the HTTP commands and the XML API alike, and a use on one keeps it
alive on all."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from tests.e2e.test_cli_and_crash import Server
from tests.e2e.test_nodes_ingress import PASSWORD, Cluster

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


@pytest.fixture
def cluster(tmp_path: Path, pg_url: str, servers: list[Server]) -> Iterator[Cluster]:
    cluster = Cluster(tmp_path, pg_url, servers)
    cluster.setup(pg_url)
    yield cluster
    cluster.engine.dispose()


def _get(url: str, command: str, query: str) -> str:
    answer = httpx.get(f"{url}/http/{command}?{query}", timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.text.strip()


def test_a_session_from_one_node_sends_on_another(cluster: Cluster) -> None:
    a, b = cluster.start(("a", "ingress", {}), ("b", "ingress", {}))
    answer = _get(a.url, "auth", f"user=acme&password={PASSWORD}")
    assert answer.startswith("OK: "), answer
    session = answer.removeprefix("OK: ")
    assert _get(b.url, "ping", f"session_id={session}") == "OK:"
    sent = _get(b.url, "sendmsg", f"session_id={session}&to=27821234567&text=Hi")
    assert sent.startswith("ID: "), sent
    message_id = sent.removeprefix("ID: ")
    assert cluster.rows("SELECT count(*) FROM messages WHERE id = :i", i=message_id) == [(1,)]
    # Back on the first node, by the same session: the message the other stored.
    status = _get(a.url, "querymsg", f"session_id={session}&apimsgid={message_id}")
    assert status.startswith(f"ID: {message_id} Status: "), status
    doc = f"<clickAPI><getBalance><session_id>{session}</session_id></getBalance></clickAPI>"
    balance = httpx.get(f"{b.url}/xml/xml?data={quote(doc)}", timeout=10)
    assert "<ok>99999.75</ok>" in balance.text, balance.text
    # The spool holds a digest of the session, not the id a client could reuse.
    assert cluster.rows("SELECT count(*) FROM dialect_sessions WHERE digest = :s",
                        s=session) == [(0,)]
    assert _get(b.url, "ping", "session_id=" + "0" * 32) == "ERR: 003, Session ID expired"
