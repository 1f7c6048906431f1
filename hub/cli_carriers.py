"""`smshub carriers`: each configured carrier, and, from the running node's /metrics, its
binds, window use, rate limit, counts and the queue depth."""

from __future__ import annotations

import argparse
import re
import urllib.error
import urllib.request
from datetime import timedelta
from decimal import Decimal
from typing import Any

from hub import app
from hub.cli_base import command, emit, open_spool
from hub.clock import parse_time, utcnow
from hub.config import Config

_LINE = re.compile(r'^smshub_carrier\{carrier="([^"]+)",figure="([^"]+)"\} (\S+)$')
_DEPTH = re.compile(r"^smshub_queue_depth (\S+)$")


def carrier_commands(sub: Any) -> None:
    cmd = command(sub, "carriers", _carriers,
                  "configured carriers, and the running node's figures for each")
    cmd.add_argument("--costs", action="store_true",
                     help="messages, segments and cost per carrier over a period instead")
    cmd.add_argument("--from", dest="since", default=None,
                     help="start of the period (date or time, local; default: 30 days ago)")
    cmd.add_argument("--to", dest="until", default=None,
                     help="end of the period, exclusive (default: now)")


def _carriers(args: argparse.Namespace, config: Config) -> int:
    if args.costs:
        return _costs(args, config)
    url = f"http://{_host(config.http.host)}:{config.http.port}/metrics"
    configured = {"simulator": "simulator (built in)"}
    configured.update({name: f"{t.type} {_where(t.options)}"
                       for name, t in config.carriers.items()})
    figures, depth, error = _scrape(url)
    data = {"node": url if error is None else None, "error": error, "queue_depth": depth,
            "carriers": {name: {"configured": what, **figures.get(name, {})}
                         for name, what in configured.items()}}
    lines = [f"{name:16} {what}" + _summary(figures.get(name))
             for name, what in configured.items()]
    head = (f"queue depth {depth:g} (node at {url})" if error is None
            else f"no running node at {url} ({error}): configuration only")
    emit(args, data, "\n".join([head, *lines]))
    return 0


def _scrape(url: str) -> tuple[dict[str, dict[str, float]], float | None, str | None]:
    try:
        with urllib.request.urlopen(url, timeout=3) as answer:  # noqa: S310 (our own node)
            body = answer.read().decode("utf-8", "replace")
    except (OSError, urllib.error.URLError) as exc:
        return {}, None, str(getattr(exc, "reason", exc))
    figures: dict[str, dict[str, float]] = {}
    depth: float | None = None
    for line in body.splitlines():
        if match := _LINE.match(line):
            figures.setdefault(match[1], {})[match[2]] = float(match[3])
        elif match := _DEPTH.match(line):
            depth = float(match[1])
    return figures, depth, None


def _summary(values: dict[str, float] | None) -> str:
    if not values:
        return ""
    shown = [("up", "up"), ("binds_up", "binds"), ("outstanding", "in flight"),
             ("window", "window"), ("rate_limit", "msg/s limit"), ("submitted", "submitted"),
             ("receipts", "receipts"), ("reconnects", "reconnects")]
    parts = [f"{label} {values[key]:g}" for key, label in shown if key in values]
    errors = sum(v for k, v in values.items() if k.startswith("status_"))
    if errors:
        parts.append(f"errors {errors:g}")
    return "  |  " + ", ".join(parts)


def _host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "") else host  # noqa: S104 (a listener's any)


def _where(options: Any) -> str:
    host, port = options.get("host"), options.get("port")
    return f"{host}:{port}" if host else ""


def _costs(args: argparse.Namespace, config: Config) -> int:
    """What each carrier took and what it costs at its `price_per_segment`."""
    until = parse_time(args.until, config.hub.timezone) if args.until else utcnow()
    since = (parse_time(args.since, config.hub.timezone) if args.since
             else until - timedelta(days=30))
    prices = app.carrier_prices(config)
    spool = open_spool(config, create=False)
    try:
        usage = spool.carrier_usage(since, until)
    finally:
        spool.close()
    costs = {u.carrier: prices.get(u.carrier, Decimal(0)) * u.segments for u in usage}
    rows: list[dict[str, Any]] = [
        {"carrier": u.carrier, "messages": u.messages, "segments": u.segments,
         "price_per_segment": str(prices.get(u.carrier, Decimal(0))),
         "cost": str(costs[u.carrier])} for u in usage]
    total = sum(costs.values(), Decimal(0))
    lines = [f"{since.isoformat(timespec='seconds')} to {until.isoformat(timespec='seconds')}"]
    lines += [f"{r['carrier']:16} {r['messages']:>9} messages {r['segments']:>9} segments"
              f" x {r['price_per_segment']} = {r['cost']}" for r in rows]
    lines.append(f"{'total':16} {total}")
    emit(args, {"from": since, "to": until, "carriers": rows, "total": str(total)},
         "\n".join(lines))
    return 0
