"""The nodes table (hub/nodes.py): each running node's heartbeat, and what it holds under
lease, counted from the messages, the outbox and the FTP batches."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Integer, Table, Text, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite

from hub.model import OutboxStatus, Status
from hub.nodes import NodeInfo, NodeRecord
from spool.batch_leases import batch_leases
from spool.engine import Database
from spool.tables import UtcTime, messages, metadata, outbox

nodes = Table(
    "nodes",
    metadata,
    Column("name", Text, primary_key=True),
    Column("role", Text, primary_key=True),
    Column("pid", Integer, nullable=False),
    Column("host", Text, nullable=False),
    Column("started_at", UtcTime, nullable=False),
    Column("last_seen", UtcTime, nullable=False),
    Column("version", Text, nullable=False),
)
n = nodes


def beat(db: Database, info: NodeInfo, now: datetime) -> None:
    """Create or refresh the row of this node name and role (a restart takes it over)."""
    dialect = postgresql if db.engine.dialect.name == "postgresql" else sqlite
    values = {"pid": info.pid, "host": info.host, "started_at": info.started_at,
              "last_seen": now, "version": info.version}
    with db.write() as conn:
        conn.execute(dialect.insert(n).values(name=info.name, role=info.role, **values)
                     .on_conflict_do_update(index_elements=[n.c.name, n.c.role],
                                            set_=values))


def leave(db: Database, info: NodeInfo) -> None:
    """Remove the row, unless another process of the same name and role took it over."""
    with db.write() as conn:
        conn.execute(delete(n).where(n.c.name == info.name, n.c.role == info.role,
                                     n.c.pid == info.pid, n.c.host == info.host))


def listed(db: Database) -> list[NodeRecord]:
    """Every node row, by name and role, with the leases its name holds: messages and
    outbox items on the rows that dispatch (an ingress process claims neither), FTP
    batches on the rows that run the listeners (a dispatch process takes no upload)."""
    m, o, b = messages, outbox, batch_leases
    with db.read() as conn:
        rows = conn.execute(select(n).order_by(n.c.name, n.c.role)).all()
        sending = {owner: int(count) for owner, count in conn.execute(
            select(m.c.lease_owner, func.count()).where(m.c.status == Status.SENDING.value)
            .group_by(m.c.lease_owner))}
        batches = {node: int(count) for node, count in conn.execute(
            select(b.c.node, func.count()).group_by(b.c.node))}
        leased: dict[str, int] = {}
        for name in {r.name for r in rows}:
            # An outbox lease token is '<node>:<uuid>' (spool/outbox.py).
            leased[name] = conn.execute(select(func.count()).where(
                o.c.status == OutboxStatus.SENDING.value,
                o.c.lease_token.startswith(f"{name}:", autoescape=True))).scalar_one()
    return [NodeRecord(
        NodeInfo(r.name, r.role, r.pid, r.host, r.started_at, r.version), r.last_seen,
        0 if r.role == "ingress" else int(sending.get(r.name, 0)),
        0 if r.role == "ingress" else leased[r.name],
        0 if r.role == "dispatch" else batches.get(r.name, 0)) for r in rows]
