"""Routing rules and failover: the first matching rule's first carrier that is up."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pytest

from hub import config as hubconfig
from hub.errors import ConfigError
from hub.model import (
    Encoding,
    Message,
    MessageClass,
    Source,
    Status,
    SubmitResult,
)
from hub.ports import CarrierSink
from hub.routing import Router, Rule
from tests.factories import NOW


@dataclass
class Stub:
    name: str
    available: bool = True
    got: list[str] = field(default_factory=list)

    async def start(self, sink: CarrierSink) -> None: ...
    async def stop(self) -> None: ...
    async def submit(self, messages: Sequence[Message]) -> list[SubmitResult]:
        raise AssertionError("not used")


def message(to: str = "+27821234567", account: int = 1, sender: str | None = None,
            cls: MessageClass = MessageClass.TRANSACTIONAL, mid: str = "m1") -> Message:
    return Message(mid, account, Source.REST, to, "hi", Encoding.GSM7, 1, Decimal("0.1"),
                   Status.SENDING, 1, cls, 0, NOW, NOW, NOW, sender=sender)


def router(**up: bool) -> Router:
    carriers = {n: Stub(n, up.get(n, True)) for n in ("sim", "voda", "mtn", "agg")}
    rules = [
        Rule(("voda", "agg"), prefixes=("+2782", "+2772")),
        Rule(("mtn",), account_ids=frozenset({7}), classes=frozenset({"marketing"})),
        Rule(("agg",), senders=frozenset({"BANK"})),
    ]
    return Router(carriers, "sim", ("agg",), rules)  # type: ignore[arg-type]


def test_the_first_matching_rule_decides_and_conditions_all_must_hold() -> None:
    r = router()
    assert r.route(message("+27821112222")).name == "voda"
    assert r.route(message("+27831112222", account=7, cls=MessageClass.MARKETING)).name == "mtn"
    assert r.route(message("+27831112222", account=7)).name == "sim"  # not marketing
    assert r.route(message("+27831112222", sender="BANK")).name == "agg"
    assert r.route(message("+4915112345678")).name == "sim"


def test_a_carrier_that_is_down_passes_its_traffic_to_the_next_on_its_list() -> None:
    r = router(voda=False, sim=False)
    assert r.route(message("+27821112222")).name == "agg"
    assert r.route(message("+4915112345678")).name == "agg"  # default's failover
    assert r.next_after(message("+27821112222"), "voda") == "agg"
    assert r.next_after(message("+27821112222"), "agg") is None


def test_when_every_candidate_is_down_the_first_is_named_so_the_message_waits() -> None:
    r = router(voda=False, agg=False)
    assert r.route(message("+27821112222")).name == "voda"


def test_split_keeps_one_recipients_order_within_each_carrier() -> None:
    r = router()
    batch = [message("+27821112222", mid=f"a{i}") for i in range(3)]
    batch.insert(1, message("+4915112345678", mid="b"))
    groups = r.split(batch)
    assert [m.id for m in groups["voda"]] == ["a0", "a1", "a2"]
    assert [m.id for m in groups["sim"]] == ["b"]


def test_routing_rules_load_from_hub_toml_and_unknown_carriers_are_named(
    tmp_path: Path,
) -> None:
    path = tmp_path / "hub.toml"
    path.write_text(
        '[routing]\ndefault_carrier = "simulator"\n'
        '[[routing.rules]]\nprefixes = ["+2782"]\ncarriers = ["simulator"]\n'
        'classes = ["marketing"]\n')
    loaded = hubconfig.load(path, env={})
    assert loaded.routing.rules[0].prefixes == ["+2782"]
    path.write_text('[[routing.rules]]\ncarriers = ["vodacom"]\n')
    with pytest.raises(ConfigError, match=r"\[routing\] rules #1 carriers: 'vodacom' is not"):
        hubconfig.load(path, env={})
    path.write_text('[[routing.rules]]\ncarriers = ["simulator"]\nnetwork = "x"\n')
    with pytest.raises(ConfigError, match=r"\[routing.rules #1\] unknown key 'network'"):
        hubconfig.load(path, env={})
    path.write_text('[carriers.voda]\nhost = "x"\n')
    with pytest.raises(ConfigError, match=r"\[carriers.voda\]: missing key 'type'"):
        hubconfig.load(path, env={})
