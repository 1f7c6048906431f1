"""What operators do from the CLI beyond creating accounts: API keys listed, revoked and
given an expiry, accounts disabled, enabled again and deleted (a tombstone that keeps the
history), messages listed by account, status and age."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Row, delete, func, select, text, update

from hub.errors import NotFound
from hub.model import Account, ErrorInfo, Message
from hub.ports import AccountDeletion, ApiKeyInfo, MessageFilter
from spool import webhooks
from spool.accounts import get_account, require_live
from spool.engine import Database
from spool.queue import cancel_unsent_in
from spool.rows import message_from_row
from spool.tables import (
    CLAIMABLE_SQL,
    SENDING_SQL,
    accounts,
    api_keys,
    mail_senders,
    messages,
)

ACCOUNT_DELETED = ErrorInfo("cancelled", "cancelled by the operator: the account was deleted")


def list_api_keys(db: Database, name: str) -> list[ApiKeyInfo]:
    with db.read() as conn:
        account_id = _account_id(conn, name)
        rows = conn.execute(_keys().where(api_keys.c.account_id == account_id)
                            .order_by(api_keys.c.id)).all()
    return [_info(r) for r in rows]


def revoke_api_key(db: Database, name: str, key_id: str, now: datetime) -> ApiKeyInfo:
    """Revoke one of the account's keys; revoking it again keeps the first time."""
    with db.write() as conn:
        account_id = _account_id(conn, name)
        row = conn.execute(_keys().where(api_keys.c.account_id == account_id,
                                         api_keys.c.key_id == key_id)).first()
        if row is None:
            raise NotFound(f"account {name!r} has no API key {key_id!r}")
        if row.revoked_at is not None:
            return _info(row)
        conn.execute(update(api_keys).where(api_keys.c.id == row.id).values(revoked_at=now))
        return ApiKeyInfo(key_id, row.created_at, now, row.expires_at)


def set_api_key_expiry(db: Database, name: str, key_id: str,
                       expires_at: datetime | None) -> ApiKeyInfo:
    """Give one of the account's keys an expiry, or none (`expires_at` None)."""
    with db.write() as conn:
        account_id = int(require_live(conn, name).id)
        row = _key(conn, account_id, name, key_id)
        conn.execute(update(api_keys).where(api_keys.c.id == row.id)
                     .values(expires_at=expires_at))
        return ApiKeyInfo(key_id, row.created_at, row.revoked_at, expires_at)


def set_enabled(db: Database, name: str, enabled: bool) -> Account:
    with db.write() as conn:
        account_id = int(require_live(conn, name).id)  # a deleted account stays disabled
        conn.execute(update(accounts).where(accounts.c.id == account_id)
                     .values(enabled=enabled))
    return get_account(db, name)


def delete_account(db: Database, name: str, cancel_queued: bool,
                   now: datetime) -> AccountDeletion:
    """Make the account a tombstone in one transaction, or change nothing: disabled, its
    keys revoked, its password and email senders removed; its name stays taken and its
    messages, events and batches stay for audit and billing. Refused (deleted False)
    while it has unsent messages, unless `cancel_queued` cancels them (credit refunded),
    or while any is being handed to a carrier: that cannot be stopped, and one that
    failed would be queued for another attempt."""
    try:
        with db.write() as conn:
            account_id = int(require_live(conn, name).id)
            # Messages first, then the account row: the lock order of the dispatcher's
            # sweeps and reports, which lock messages and then refund the account.
            cancelled, refunded = (cancel_unsent_in(conn, account_id, ACCOUNT_DELETED, now)
                                   if cancel_queued else (0, Decimal(0)))
            require_live(conn, name, lock=True)
            unsent, sending = _unfinished(conn, account_id)
            if unsent or sending:
                raise _Busy(unsent, sending)  # rolls back the cancellations too
            revoked = conn.execute(update(api_keys).where(
                api_keys.c.account_id == account_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=now)).rowcount
            conn.execute(update(accounts).where(accounts.c.id == account_id).values(
                enabled=False, deleted_at=now, password_hash=None))
            # Frees its sender addresses for the account the customer moves to.
            conn.execute(delete(mail_senders).where(mail_senders.c.account_id == account_id))
            webhooks.disable_account(conn, account_id, "the account was deleted", now)
    except _Busy as busy:
        return AccountDeletion(get_account(db, name), False, unsent=busy.unsent,
                               sending=busy.sending)
    return AccountDeletion(get_account(db, name), True, revoked, cancelled, refunded)


class _Busy(Exception):
    def __init__(self, unsent: int, sending: int) -> None:
        super().__init__(unsent, sending)
        self.unsent, self.sending = unsent, sending


def list_messages(db: Database, query: MessageFilter) -> list[Message]:
    """Newest first."""
    m = messages
    where = [m.c.account_id == query.account_id] if query.account_id is not None else []
    if query.status is not None:
        where.append(m.c.status == query.status.value)
    if query.statuses:
        where.append(m.c.status.in_([s.value for s in query.statuses]))
    if query.since is not None:
        where.append(m.c.accepted_at >= query.since)
    if query.until is not None:
        where.append(m.c.accepted_at < query.until)
    for column, value in ((m.c.batch_id, query.batch_id), (m.c.recipient, query.recipient),
                          (m.c.client_ref, query.client_ref)):
        if value is not None:
            where.append(column == value)
    if query.before_id is not None:  # the next page: ids sort by acceptance
        where.append(m.c.id < query.before_id)
        select_ = select(m).where(*where).order_by(m.c.id.desc())
    else:
        select_ = select(m).where(*where).order_by(m.c.accepted_at.desc(), m.c.id.desc())
    with db.read() as conn:
        rows = conn.execute(select_.limit(query.limit)).all()
    return [message_from_row(row._mapping) for row in rows]


def _keys() -> Any:
    return select(api_keys.c.id, api_keys.c.key_id, api_keys.c.created_at,
                  api_keys.c.revoked_at, api_keys.c.expires_at)


def _info(row: Row[Any]) -> ApiKeyInfo:
    return ApiKeyInfo(row.key_id, row.created_at, row.revoked_at, row.expires_at)


def _key(conn: Connection, account_id: int, name: str, key_id: str) -> Row[Any]:
    row: Row[Any] | None = conn.execute(_keys().where(
        api_keys.c.account_id == account_id, api_keys.c.key_id == key_id)).first()
    if row is None:
        raise NotFound(f"account {name!r} has no API key {key_id!r}")
    return row


def _unfinished(conn: Connection, account_id: int) -> tuple[int, int]:
    """The account's unsent messages, and those being sent right now."""
    def count(status_sql: str) -> int:
        return int(conn.execute(select(func.count()).select_from(messages).where(
            text(status_sql), messages.c.account_id == account_id)).scalar_one())
    return count(CLAIMABLE_SQL), count(SENDING_SQL)


def _account_id(conn: Connection, name: str) -> int:
    row: Row[Any] | None = conn.execute(
        select(accounts.c.id).where(accounts.c.name == name)).first()
    if row is None:
        raise NotFound(f"no account named {name!r}")
    return int(row.id)
