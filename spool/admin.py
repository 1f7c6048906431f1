"""What operators do from the CLI beyond creating accounts: API keys listed and revoked,
accounts disabled and enabled again, messages listed by account, status and age."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, select, update

from hub.errors import NotFound
from hub.model import Account, Message
from hub.ports import ApiKeyInfo, MessageFilter
from spool.accounts import get_account
from spool.engine import Database
from spool.rows import message_from_row
from spool.tables import accounts, api_keys, messages


def list_api_keys(db: Database, name: str) -> list[ApiKeyInfo]:
    with db.read() as conn:
        account_id = _account_id(conn, name)
        rows = conn.execute(_keys().where(api_keys.c.account_id == account_id)
                            .order_by(api_keys.c.id)).all()
    return [ApiKeyInfo(r.key_id, r.created_at, r.revoked_at) for r in rows]


def revoke_api_key(db: Database, name: str, key_id: str, now: datetime) -> ApiKeyInfo:
    """Revoke one of the account's keys; revoking it again keeps the first time."""
    with db.write() as conn:
        account_id = _account_id(conn, name)
        row = conn.execute(_keys().where(api_keys.c.account_id == account_id,
                                         api_keys.c.key_id == key_id)).first()
        if row is None:
            raise NotFound(f"account {name!r} has no API key {key_id!r}")
        if row.revoked_at is not None:
            return ApiKeyInfo(key_id, row.created_at, row.revoked_at)
        conn.execute(update(api_keys).where(api_keys.c.id == row.id).values(revoked_at=now))
        return ApiKeyInfo(key_id, row.created_at, now)


def set_enabled(db: Database, name: str, enabled: bool) -> Account:
    with db.write() as conn:
        account_id = _account_id(conn, name)
        conn.execute(update(accounts).where(accounts.c.id == account_id)
                     .values(enabled=enabled))
    return get_account(db, name)


def list_messages(db: Database, query: MessageFilter) -> list[Message]:
    """Newest first."""
    m = messages
    where = [m.c.account_id == query.account_id] if query.account_id is not None else []
    if query.status is not None:
        where.append(m.c.status == query.status.value)
    if query.since is not None:
        where.append(m.c.accepted_at >= query.since)
    select_ = select(m).where(*where).order_by(m.c.accepted_at.desc(), m.c.id.desc())
    with db.read() as conn:
        rows = conn.execute(select_.limit(query.limit)).all()
    return [message_from_row(row._mapping) for row in rows]


def _keys() -> Any:
    return select(api_keys.c.id, api_keys.c.key_id, api_keys.c.created_at,
                  api_keys.c.revoked_at)


def _account_id(conn: Connection, name: str) -> int:
    row: Row[Any] | None = conn.execute(
        select(accounts.c.id).where(accounts.c.name == name)).first()
    if row is None:
        raise NotFound(f"no account named {name!r}")
    return int(row.id)
