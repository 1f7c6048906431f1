"""`smshub nodes`: the nodes that run on this spool, from their heartbeats: role, process,
host, version, leases held and when each was last heard from (stale ones marked)."""

from __future__ import annotations

import argparse
from typing import Any

from hub.cli_base import command, emit, open_spool
from hub.clock import utcnow
from hub.config import Config
from hub.nodes import NodeRecord, is_live


def node_commands(sub: Any) -> None:
    command(sub, "nodes", _nodes,
            "running nodes: roles, leases held, last heartbeat (stale ones marked)")


def _nodes(args: argparse.Namespace, config: Config) -> int:
    spool = open_spool(config, create=False)
    try:
        records = spool.list_nodes()
    finally:
        spool.close()
    now = utcnow()
    interval = config.hub.heartbeat_interval
    data = [_row(r, is_live(r, now, interval), (now - r.last_seen).total_seconds())
            for r in records]
    lines = [f"{'NODE':16} {'ROLE':8} {'STATE':5} {'PID':>7} {'HOST':16} "
             f"{'MESSAGES':>8} {'OUTBOX':>6} {'BATCHES':>7}  LAST SEEN"]
    lines += [f"{d['name']:16} {d['role']:8} {d['state']:5} {d['pid']:>7} {d['host']:16} "
              f"{d['messages_leased']:>8} {d['outbox_leased']:>6} {d['batches_leased']:>7}  "
              f"{d['last_seen']} ({d['seconds_ago']:.0f} s ago)" for d in data]
    emit(args, data, "\n".join(lines) if data else "no node is running on this spool")
    return 0


def _row(record: NodeRecord, live: bool, ago: float) -> dict[str, Any]:
    info = record.info
    return {
        "name": info.name, "role": info.role, "state": "live" if live else "stale",
        "pid": info.pid, "host": info.host, "version": info.version,
        "started_at": info.started_at.isoformat(timespec="seconds"),
        "last_seen": record.last_seen.isoformat(timespec="seconds"),
        "seconds_ago": round(ago, 1),
        "messages_leased": record.messages_leased, "outbox_leased": record.outbox_leased,
        "batches_leased": record.batches_leased,
    }
