"""Account storage: balances, prices, sender ids, password hashes and API keys."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Row, insert, literal, select, update
from sqlalchemy.exc import IntegrityError

from hub.errors import Conflict, NotFound, Rejected
from hub.model import Account
from hub.operators import password_stamp
from hub.ports import ApiKeyRecord
from spool.engine import Database
from spool.rows import account_from_row
from spool.tables import Money, account_sender_ids, accounts, api_keys, to_units


def create_account(
    db: Database,
    name: str,
    credits: Decimal,
    price_per_segment: Decimal,
    sender_ids: Sequence[str],
) -> Account:
    for amount in (credits, price_per_segment):
        to_units(amount)  # refuse sub-unit amounts before touching the database
    values = {
        "name": name,
        "balance": credits,
        "price_per_segment": price_per_segment,
        "enabled": True,
        "created_at": datetime.now(UTC),
    }
    try:
        with db.write() as conn:
            found = _find(conn, name)
            if found is not None and found.deleted_at is not None:
                raise Conflict(f"account {name!r} was deleted; the names of deleted "
                               "accounts stay taken")
            if found is not None:
                raise Conflict(f"account {name!r} already exists")
            inserted = conn.execute(insert(accounts).values(values).returning(accounts.c.id))
            account_id = inserted.scalar_one()
            rows = [{"account_id": account_id, "sender_id": s} for s in set(sender_ids)]
            if rows:
                conn.execute(insert(account_sender_ids), rows)
            return _load(conn, _require(conn, name))
    except IntegrityError as exc:  # a concurrent create of the same name won the race
        raise Conflict(f"account {name!r} already exists") from exc


def get_account(db: Database, name: str) -> Account:
    with db.read() as conn:
        return _load(conn, _require(conn, name))


def get_account_by_id(db: Database, account_id: int) -> Account:
    with db.read() as conn:
        return _load(conn, _by_id(conn, account_id))


def session_account(db: Database, account_id: int) -> tuple[Account, str]:
    """The account and the stamp of its password (password_stamp): a portal session
    opened with another password, since changed, no longer matches it."""
    with db.read() as conn:
        row = _by_id(conn, account_id)
        return _load(conn, row), password_stamp(row.password_hash)


def _by_id(conn: Connection, account_id: int) -> Row[Any]:
    row = conn.execute(select(accounts).where(accounts.c.id == account_id)).first()
    if row is None:
        raise NotFound(f"no account with id {account_id}")
    return row


def list_accounts(db: Database) -> list[Account]:
    with db.read() as conn:
        rows = conn.execute(select(accounts).order_by(accounts.c.name)).all()
        senders: dict[int, list[str]] = defaultdict(list)
        for account_id, sender_id in conn.execute(select(account_sender_ids)):
            senders[account_id].append(sender_id)
    return [account_from_row(row._mapping, senders[row.id]) for row in rows]


def add_credits(db: Database, name: str, amount: Decimal) -> Account:
    to_units(amount)
    with db.write() as conn:
        row = _require(conn, name, lock=True)
        if row.balance + amount < 0:
            raise Rejected(
                "insufficient_credit",
                f"account {name!r} has {row.balance} credits; cannot take {-amount}",
            )
        conn.execute(
            update(accounts)
            .where(accounts.c.id == row.id)
            .values(balance=accounts.c.balance + _money(amount))
        )
        return _load(conn, _require(conn, name))


def set_password_hash(db: Database, name: str, password_hash: str) -> None:
    with db.write() as conn:
        row = require_live(conn, name, lock=True)
        conn.execute(
            update(accounts).where(accounts.c.id == row.id).values(password_hash=password_hash)
        )


def password_hash(db: Database, name: str) -> tuple[Account, str] | None:
    with db.read() as conn:
        row = _find(conn, name)
        if row is None or row.password_hash is None or row.deleted_at is not None:
            return None
        return _load(conn, row), row.password_hash


def add_api_key(db: Database, name: str, key_id: str, digest: bytes,
                expires_at: datetime | None = None) -> None:
    values = {"key_id": key_id, "digest": digest, "created_at": datetime.now(UTC),
              "expires_at": expires_at}
    try:
        with db.write() as conn:
            row = require_live(conn, name)
            conn.execute(insert(api_keys).values(**values, account_id=row.id))
    except IntegrityError as exc:
        raise Conflict(f"API key {key_id!r} already exists") from exc


def api_key(db: Database, key_id: str) -> ApiKeyRecord | None:
    query = (
        select(accounts, api_keys.c.digest, api_keys.c.expires_at.label("key_expires_at"))
        .join(api_keys, api_keys.c.account_id == accounts.c.id)
        .where(api_keys.c.key_id == key_id, api_keys.c.revoked_at.is_(None))
    )
    with db.read() as conn:
        row = conn.execute(query).first()
        if row is None:
            return None
        return ApiKeyRecord(_load(conn, row), bytes(row.digest), row.key_expires_at)


def _money(amount: Decimal) -> Any:
    return literal(amount, Money())


def _find(conn: Connection, name: str, lock: bool = False) -> Row[Any] | None:
    query = select(accounts).where(accounts.c.name == name)
    return conn.execute(query.with_for_update() if lock else query).first()


def _require(conn: Connection, name: str, lock: bool = False) -> Row[Any]:
    row = _find(conn, name, lock)
    if row is None:
        raise NotFound(f"no account named {name!r}")
    return row


def require_live(conn: Connection, name: str, lock: bool = False) -> Row[Any]:
    """The account's row, refused once deleted: nothing may give a tombstone access again."""
    row = _require(conn, name, lock)
    if row.deleted_at is not None:
        raise Conflict(f"account {name!r} was deleted at {row.deleted_at.isoformat()}")
    return row


def _load(conn: Connection, row: Row[Any]) -> Account:
    query = select(account_sender_ids.c.sender_id).where(
        account_sender_ids.c.account_id == row.id
    )
    return account_from_row(row._mapping, conn.scalars(query))
