"""Idempotency keys in the spool: a key claimed by its first request (or found answered,
running, or used for another request), its answer kept, given up, or purged after the
window. `seal` keeps an answer inside intake's transaction for its messages."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from hub.idempotency import Answer, KeyClaim, KeyLost, KeyRequest, KeyState
from hub.ports import CommitSeal
from spool.engine import Database
from spool.tables import idempotency_keys

k = idempotency_keys
_RUNNING, _DONE = "running", "done"


def claim_key(db: Database, request: KeyRequest) -> KeyClaim:
    try:
        return _claim(db, request)
    except IntegrityError:
        # PostgreSQL: a concurrent first claim of the same key won the insert (rolled
        # back here); looked at again, the key is running.
        return _claim(db, request)


def _claim(db: Database, request: KeyRequest) -> KeyClaim:
    with db.write() as conn:
        row = conn.execute(select(k).where(*_key(request.account_id, request.key))
                           .with_for_update()).mappings().first()
        if row is not None and row["expires_at"] > request.now:
            found = _existing(row, request)
            if found is not None:
                return found
        token = secrets.token_hex(8)
        values = {"fingerprint": request.fingerprint, "state": _RUNNING, "token": token,
                  "status": None, "media_type": None, "body": None, "location": None,
                  "created_at": request.now, "locked_until": request.lease_until,
                  "expires_at": request.expires_at}
        if row is None:
            conn.execute(insert(k).values(account_id=request.account_id, key=request.key,
                                          **values))
        else:  # expired, or held by a request that died: taken over
            conn.execute(update(k).where(*_key(request.account_id, request.key))
                         .values(**values))
        return KeyClaim(KeyState.NEW, token)


def _existing(row: Any, request: KeyRequest) -> KeyClaim | None:
    """What a live record says, or None when its holder died (its lease is over)."""
    if row["fingerprint"] != request.fingerprint:
        return KeyClaim(KeyState.MISMATCH)
    if row["state"] == _DONE:
        return KeyClaim(KeyState.REPLAY, answer=Answer(row["status"], bytes(row["body"]),
                                                       row["media_type"], row["location"]))
    if row["locked_until"] > request.now:
        return KeyClaim(KeyState.RUNNING)
    return None


def finish_key(db: Database, account_id: int, key: str, token: str, answer: Answer) -> bool:
    with db.write() as conn:
        return _finish(conn, account_id, key, token, answer)


def _finish(conn: Connection, account_id: int, key: str, token: str, answer: Answer) -> bool:
    done = conn.execute(update(k).where(*_key(account_id, key), k.c.token == token,
                                        k.c.state == _RUNNING)
                        .values(state=_DONE, status=answer.status, body=answer.body,
                                media_type=answer.media_type, location=answer.location))
    return bool(done.rowcount)


def seal(conn: Connection, seal: CommitSeal, answer: Answer) -> None:
    """In intake's transaction: keep the answer, or KeyLost (rolling the caller's
    messages back) if the key's hold ran out and another request took it."""
    if not _finish(conn, seal.account_id, seal.key, seal.token, answer):
        raise KeyLost()


def release_key(db: Database, account_id: int, key: str, token: str) -> None:
    with db.write() as conn:
        conn.execute(delete(k).where(*_key(account_id, key), k.c.token == token,
                                     k.c.state == _RUNNING))


def purge_keys(db: Database, now: datetime) -> int:
    with db.write() as conn:
        return int(conn.execute(delete(k).where(k.c.expires_at <= now)).rowcount)


def _key(account_id: int, key: str) -> tuple[Any, Any]:
    return k.c.account_id == account_id, k.c.key == key
