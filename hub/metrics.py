"""In-process counters and their Prometheus text rendering (exposition format 0.0.4);
spool-wide numbers (messages by status, queue depth) and the spool writer's figures
are read at scrape time."""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import astuple
from typing import Any

from hub.model import Status, Totals, WriterFigures


class Metrics:
    """The node's counters (accepted, refused, submitted, reports...), rendered for
    `/metrics` together with spool-wide numbers read at scrape time."""

    def __init__(self) -> None:
        self.accepted: Counter[str] = Counter()  # by source
        self.refused: Counter[str] = Counter()  # by reason code
        self.dispatched: Counter[str] = Counter()  # by carrier and verdict
        self.carrier_errors: Counter[str] = Counter()  # by carrier and error code
        self.reports: Counter[str] = Counter()  # by status
        self._recent: deque[tuple[float, int]] = deque()
        # Each carrier's own figures (binds up, window use, rate...), read at scrape time.
        self.carrier_figures: Callable[[], Mapping[str, Mapping[str, float]]] | None = None
        self._shared_rate: float | None = None  # a split node's dispatch process's
        # This process's use of the spool's writer, read at scrape time, under its role
        # (all, ingress, dispatch); a split node's dispatch process's beside it.
        self.writer_figures: Callable[[], WriterFigures] | None = None
        self.role = "all"
        self._shared_writer: tuple[str, WriterFigures] | None = None

    def export(self) -> dict[str, Any]:
        """The dispatch side's figures, which a split node's dispatch process hands its
        ingress process (the one with the listeners) to serve as the node's own."""
        return {"dispatched": dict(self.dispatched),
                "carrier_errors": dict(self.carrier_errors),
                "reports": dict(self.reports), "rate": self.dispatch_rate(),
                "carriers": dict(self.carrier_figures()) if self.carrier_figures else {},
                "writer": [self.role, *astuple(self._own_writer())]}

    def absorb(self, shared: Mapping[str, Any]) -> None:
        """Serve figures `export` made in the node's dispatch process, in place of this
        process's dispatch side, which does not run."""
        self.dispatched = Counter(shared.get("dispatched", {}))
        self.carrier_errors = Counter(shared.get("carrier_errors", {}))
        self.reports = Counter(shared.get("reports", {}))
        self._shared_rate = float(shared.get("rate", 0.0))
        carriers: Mapping[str, Mapping[str, float]] = shared.get("carriers", {})
        self.carrier_figures = lambda: carriers
        if "writer" in shared:
            role, turns, waiting, holding = shared["writer"]
            self._shared_writer = (str(role), WriterFigures(int(turns), float(waiting),
                                                            float(holding)))

    def note_dispatched(self, count: int) -> None:
        now = time.monotonic()
        self._recent.append((now, count))
        while self._recent and self._recent[0][0] < now - 60:
            self._recent.popleft()

    def dispatch_rate(self) -> float:
        """Messages handed to carriers per second over the last minute."""
        if self._shared_rate is not None:
            return self._shared_rate
        now = time.monotonic()
        return sum(n for at, n in self._recent if at >= now - 60) / 60.0

    def render(self, totals: Totals) -> str:
        lines: list[str] = []
        _family(lines, "smshub_messages", "gauge", "Messages in the spool by status.",
                {f'status="{s.value}"': totals.by_status.get(s, 0) for s in Status})
        _family(lines, "smshub_queue_depth", "gauge",
                "Messages due for dispatch now.", {"": totals.due})
        _family(lines, "smshub_dispatch_rate", "gauge",
                "Messages handed to carriers per second, last minute.",
                {"": round(self.dispatch_rate(), 3)})
        _family(lines, "smshub_accepted_total", "counter", "Messages accepted by intake.",
                {f'source="{k}"': v for k, v in sorted(self.accepted.items())})
        _family(lines, "smshub_refused_total", "counter", "Submissions refused by intake.",
                {f'code="{k}"': v for k, v in sorted(self.refused.items())})
        _family(lines, "smshub_dispatched_total", "counter", "Carrier submissions by verdict.",
                _pairs(self.dispatched, "carrier", "verdict"))
        _family(lines, "smshub_carrier_errors_total", "counter", "Carrier errors by code.",
                _pairs(self.carrier_errors, "carrier", "code"))
        _family(lines, "smshub_reports_total", "counter", "Delivery reports applied.",
                {f'status="{k}"': v for k, v in sorted(self.reports.items())})
        figures = self.carrier_figures() if self.carrier_figures else {}
        _family(lines, "smshub_carrier", "gauge",
                "Each carrier's own figures: binds, window use, rate limit, counts.",
                {f'carrier="{name}",figure="{key}"': value
                 for name, values in sorted(figures.items())
                 for key, value in sorted(values.items())})
        writers = self._writers()
        _family(lines, "smshub_spool_writer_turns_total", "counter",
                "Write transactions (turns at the spool's writer) by process.",
                {f'process="{role}"': f.turns for role, f in writers})
        _family(lines, "smshub_spool_writer_wait_seconds_total", "counter",
                "Seconds spent waiting for the spool writer's turn, by process.",
                {f'process="{role}"': round(f.waiting, 6) for role, f in writers})
        _family(lines, "smshub_spool_writer_hold_seconds_total", "counter",
                "Seconds the spool's writer was held, by process (on SQLite the node's "
                "processes share one writer: their rates added up are its busy share).",
                {f'process="{role}"': round(f.holding, 6) for role, f in writers})
        return "\n".join(lines) + "\n"

    def _own_writer(self) -> WriterFigures:
        return self.writer_figures() if self.writer_figures else WriterFigures()

    def _writers(self) -> list[tuple[str, WriterFigures]]:
        own = [(self.role, self._own_writer())] if self.writer_figures else []
        return own + ([self._shared_writer] if self._shared_writer else [])


def _pairs(counter: Counter[str], first: str, second: str) -> dict[str, int]:
    out = {}
    for key, value in sorted(counter.items()):
        a, _, b = key.partition("|")
        out[f'{first}="{a}",{second}="{b}"'] = value
    return out


def _family(
    lines: list[str], name: str, kind: str, help_text: str, values: Mapping[str, float]
) -> None:
    lines.append(f"# HELP {name} {help_text}")
    lines.append(f"# TYPE {name} {kind}")
    for labels, value in values.items():
        lines.append(f"{name}{{{labels}}} {value}" if labels else f"{name} {value}")
