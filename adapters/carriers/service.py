"""The carriers built from their sections, by name, for the router: the simulator now;
SMPP and HTTP upstreams add theirs here."""

from __future__ import annotations

from adapters.carriers.simulator import SimulatorCarrier, SimulatorRules
from hub.config import Config
from hub.ports import Carrier


def build(config: Config) -> dict[str, Carrier]:
    sim = config.simulator
    rules = SimulatorRules(
        report_delay=sim.report_delay,
        undelivered_suffixes=tuple(sim.undelivered_suffixes),
        rejected_suffixes=tuple(sim.rejected_suffixes),
        throttled_suffixes=tuple(sim.throttled_suffixes),
    )
    return {"simulator": SimulatorCarrier(rules)}
