"""The carriers built from their sections, by name, for the router: the built-in
simulator, and each `[carriers.NAME]` by its type (SMPP, HTTP upstream)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from starlette.routing import BaseRoute

from adapters.carriers.http.config import settings_from
from adapters.carriers.http.upstream import HttpUpstreamCarrier
from adapters.carriers.simulator import SimulatorCarrier, SimulatorRules
from adapters.carriers.smpp.carrier import SmppCarrier
from adapters.carriers.smpp.config import SmppSettings
from hub.config import CarrierTable, Config, build_table
from hub.errors import ConfigError
from hub.policies import ReceiptTimeout
from hub.ports import Carrier, CarrierSink, Coordination, InboundPartStore, ReceiptStore
from hub.spoolcall import SpoolThreads


def build(config: Config, owed: SpoolThreads[ReceiptStore] | None = None,
          parts: SpoolThreads[InboundPartStore] | None = None,
          coordination: Coordination | None = None) -> dict[str, Carrier]:
    """The carriers by name; `owed` lets the simulator re-derive, at start, the delivery
    reports it owed before the hub went down; `parts` holds SMPP long replies' parts;
    with `coordination` (several nodes) SMPP binds and rates are shared cluster-wide."""
    sim = config.simulator
    rules = SimulatorRules(
        report_delay=sim.report_delay,
        undelivered_suffixes=tuple(sim.undelivered_suffixes),
        rejected_suffixes=tuple(sim.rejected_suffixes),
        throttled_suffixes=tuple(sim.throttled_suffixes),
    )
    built: dict[str, Carrier] = {"simulator": SimulatorCarrier(rules, owed=owed)}
    for name, table in config.carriers.items():
        built[name] = _build_one(table, config.hub.default_region, parts, coordination)
    return built


def receipt_timeouts(config: Config) -> dict[str, ReceiptTimeout]:
    """How long each carrier's messages wait for a delivery report, from its section."""
    sim = config.simulator
    timeouts = {"simulator": ReceiptTimeout(sim.receipt_timeout, sim.receipt_margin)}
    for name, table in config.carriers.items():
        if table.type == "http":
            http = settings_from(table, config.hub.default_region)
            timeouts[name] = ReceiptTimeout(http.receipt_timeout, http.receipt_margin)
        elif table.type == "smpp":
            smpp = build_table(SmppSettings, table)
            timeouts[name] = ReceiptTimeout(smpp.receipt_timeout, smpp.receipt_margin)
    return timeouts


def prices(config: Config) -> dict[str, Decimal]:
    """What each carrier charges per segment, from its section (cost reports)."""
    found = {"simulator": Decimal(str(config.simulator.price_per_segment))}
    for name, table in config.carriers.items():
        if table.type == "http":
            price = settings_from(table, config.hub.default_region).price_per_segment
        elif table.type == "smpp":
            price = build_table(SmppSettings, table).price_per_segment
        else:
            continue
        found[name] = Decimal(str(price))
    return found


def callback_routes(carriers: Mapping[str, Carrier]) -> list[BaseRoute]:
    """The routes carriers serve on the hub's HTTP listener (an HTTP upstream's delivery
    report and reply callbacks), for the composition root to mount."""
    return [route for carrier in carriers.values()
            if isinstance(carrier, HttpUpstreamCarrier) for route in carrier.callback_routes()]


def take_callbacks(carriers: Mapping[str, Carrier], sink: CarrierSink | None) -> None:
    """Have HTTP upstream carriers commit their callbacks through `sink` without being
    started (an ingress node: it serves the callback routes, another node sends)."""
    for carrier in carriers.values():
        if isinstance(carrier, HttpUpstreamCarrier):
            carrier.take_callbacks(sink)


def _build_one(table: CarrierTable, region: str = "ZA",
               parts: SpoolThreads[InboundPartStore] | None = None,
               coordination: Coordination | None = None) -> Carrier:
    if table.type == "http":
        return HttpUpstreamCarrier(settings_from(table, region))
    if table.type == "smpp":
        return SmppCarrier(table.name, build_table(SmppSettings, table), parts=parts,
                           coordination=coordination)
    raise ConfigError(f"{table.source}: [carriers.{table.name}] type: '{table.type}' is not "
                      "a carrier type; one of: smpp, http")
