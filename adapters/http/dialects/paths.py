"""The HTTP dialects' paths: the only ones whose clients put credentials in the URL,
so the one exception to the guard that refuses them (adapters/http/guards.py)."""

from __future__ import annotations

WINSMS = ("/api/auth.asp", "/api/credits.asp", "/api/batchmessage.asp")
CLICKATELL_COMMANDS = ("auth", "ping", "sendmsg", "querymsg", "getmsgcharge", "getbalance",
                       "delmsg")
CLICKATELL = tuple(f"/http/{command}" for command in CLICKATELL_COMMANDS)
KANNEL = ("/cgi-bin/sendsms",)

CREDENTIALS_ALLOWED = frozenset({*WINSMS, *CLICKATELL, *KANNEL})
