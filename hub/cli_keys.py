"""`smshub account api-key/api-keys/revoke-key/expire-key`: API keys created (printed
once, optionally expiring), listed with their state, revoked, and given or cleared an
expiry."""

from __future__ import annotations

import argparse
import re
from datetime import datetime, timedelta
from typing import Any

from hub import accounts
from hub.cli_base import command, emit, open_spool
from hub.clock import parse_time, utcnow
from hub.config import Config
from hub.errors import Rejected
from hub.ports import ApiKeyInfo

EXPIRES_HELP = (
    "a duration from now (90d, 12h, 30m, 2w, 1y) or an ISO 8601 date or time "
    "(2027-03-01 is the start of that day; a time without an offset is in the hub's "
    "timezone)")
_DURATION = re.compile(r"(\d+)([mhdwy])")
_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}


def key_commands(acc: Any) -> None:
    key = command(acc, "api-key", _account_api_key,
                  "create an API key and print it (shown only once)")
    key.add_argument("name")
    key.add_argument("--expires", metavar="WHEN", help=EXPIRES_HELP)
    command(acc, "api-keys", _account_api_keys,
             "list the account's API keys (ids and dates; the keys are never stored)"
             ).add_argument("name")
    revoke = command(acc, "revoke-key", _account_revoke_key,
                      "revoke an API key, named by its id or given whole; a running hub "
                      "may accept it for up to [accounts] credential_cache_seconds")
    revoke.add_argument("name")
    revoke.add_argument("key", help="the key id (as `api-keys` lists it) or the key itself")
    expire = command(acc, "expire-key", _account_expire_key,
                     "give an API key an expiry, or take it away; from then on the key is "
                     "refused as a revoked one is (401 key_expired in the JSON and XML APIs)")
    expire.add_argument("name")
    expire.add_argument("key", help="the key id (as `api-keys` lists it) or the key itself")
    when = expire.add_mutually_exclusive_group(required=True)
    when.add_argument("--at", metavar="WHEN", help=EXPIRES_HELP)
    when.add_argument("--never", action="store_true", help="the key no longer expires")


def _account_api_key(args: argparse.Namespace, config: Config) -> int:
    expires = None if args.expires is None else _expiry(args.expires, config, utcnow())
    spool = open_spool(config)
    try:
        key = accounts.create_api_key(spool, accounts.load_secret(config.data_dir), args.name,
                                      expires)
    finally:
        spool.close()
    emit(args, {"name": args.name, "api_key": key,
                "expires_at": expires.isoformat() if expires else None}, key)
    return 0


def _expiry(text: str, config: Config, now: datetime) -> datetime:
    """--expires / --at: a duration from now or an ISO 8601 date or time, in the future."""
    duration = _DURATION.fullmatch(text.strip())
    if duration is None:
        at = parse_time(text, config.hub.timezone)
    else:
        try:
            at = now + timedelta(seconds=int(duration.group(1)) * _UNITS[duration.group(2)])
        except OverflowError:
            raise Rejected("invalid_time", f"{text!r} is out of range") from None
    if at <= now:
        raise Rejected("invalid_time", f"{text!r} ({at.isoformat()}) is not in the future; "
                       "`revoke-key` stops a key now")
    return at


def _key_id(key: str) -> str:
    if key.startswith(f"{accounts.KEY_PREFIX}_"):  # the whole key: its id is inside
        return key.split("_")[1]
    return key


def _key_json(key: ApiKeyInfo, now: datetime) -> dict[str, Any]:
    def iso(at: datetime | None) -> str | None:
        return at.isoformat() if at else None
    state = ("revoked" if key.revoked_at else
             "expired" if key.expires_at and key.expires_at <= now else "active")
    return {"key_id": key.key_id, "state": state, "created_at": iso(key.created_at),
            "expires_at": iso(key.expires_at), "revoked_at": iso(key.revoked_at)}


def _key_text(d: dict[str, Any]) -> str:
    text = f"{d['key_id']}  created {d['created_at']}"
    if d["state"] == "revoked":
        return text + f"  revoked {d['revoked_at']}"
    if d["state"] == "expired":
        return text + f"  EXPIRED {d['expires_at']}"
    return text + (f"  expires {d['expires_at']}" if d["expires_at"] else "") + "  active"


def _account_api_keys(args: argparse.Namespace, config: Config) -> int:
    spool = open_spool(config, create=False)
    try:
        keys = spool.api_keys(args.name)
    finally:
        spool.close()
    now = utcnow()
    data = [_key_json(k, now) for k in keys]
    emit(args, data, "\n".join(_key_text(d) for d in data) or "no API keys")
    return 0


def _account_expire_key(args: argparse.Namespace, config: Config) -> int:
    now = utcnow()
    expires = None if args.never else _expiry(args.at, config, now)
    spool = open_spool(config, create=False)
    try:
        key = spool.set_api_key_expiry(args.name, _key_id(args.key), expires)
    finally:
        spool.close()
    data = {"name": args.name, **_key_json(key, now)}
    emit(args, data, f"API key {key.key_id} of {args.name} "
         + (f"expires at {data['expires_at']}" if expires else "no longer expires"))
    return 0


def _account_revoke_key(args: argparse.Namespace, config: Config) -> int:
    key_id = _key_id(args.key)
    spool = open_spool(config, create=False)
    try:
        key = spool.revoke_api_key(args.name, key_id, utcnow())
    finally:
        spool.close()
    revoked = key.revoked_at.isoformat() if key.revoked_at else None
    emit(args, {"name": args.name, "key_id": key.key_id, "revoked_at": revoked},
          f"API key {key.key_id} of {args.name} revoked at {revoked}")
    return 0
