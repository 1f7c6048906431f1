"""`smshub nodes` from the command line (issue #16): each node's row with its role,
process, leases and last heartbeat, a silent one marked stale."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from hub.clock import utcnow
from hub.nodes import NodeInfo
from spool import open_spool
from tests.clirun import hub_cli


def test_nodes_lists_live_and_stale_nodes_with_their_leases(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    cli = hub_cli(tmp_path, monkeypatch, capsys)
    code, out, _ = cli("nodes")
    assert code == 1  # no spool yet: a read command creates none
    assert cli("db", "upgrade")[0] == 0
    assert cli("nodes")[1].strip() == "no node is running on this spool"
    spool = open_spool(f"sqlite:///{tmp_path / 'var' / 'spool.db'}")
    now = utcnow()
    try:
        spool.beat(NodeInfo("east", "dispatch", 101, "host-a", now, "1.2"), now)
        spool.beat(NodeInfo("west", "all", 202, "host-b", now, "1.2"),
                   now - timedelta(minutes=5))
    finally:
        spool.close()
    code, out, _ = cli("nodes")
    lines = out.splitlines()
    assert code == 0 and lines[0].split()[:3] == ["NODE", "ROLE", "STATE"]
    assert lines[0].split()[5:8] == ["MESSAGES", "OUTBOX", "BATCHES"]
    assert lines[1].split()[:8] == ["east", "dispatch", "live", "101", "host-a", "0", "0", "0"]
    assert lines[2].split()[:3] == ["west", "all", "stale"]
    code, rows, _ = cli("nodes", "--json")
    assert [(r["name"], r["state"], r["version"], r["batches_leased"]) for r in rows] == [
        ("east", "live", "1.2", 0), ("west", "stale", "1.2", 0)]
    assert rows[1]["seconds_ago"] >= 300
