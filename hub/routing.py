"""Routing: which carrier takes a message. Rules from `[routing]` match by account,
destination prefix, message class and sender, each with an ordered failover list; the
first carrier on the list that is up takes the message."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from hub.errors import ConfigError
from hub.model import Message
from hub.ports import Carrier


@dataclass(frozen=True, slots=True)
class Rule:
    """Conditions (empty: any) and the carriers to try, in order. Prefixes are E.164:
    South African numbers are portable, so a prefix says a network only by default."""
    carriers: tuple[str, ...]
    account_ids: frozenset[int] = frozenset()
    prefixes: tuple[str, ...] = ()
    classes: frozenset[str] = frozenset()
    senders: frozenset[str] = frozenset()

    def matches(self, message: Message) -> bool:
        return ((not self.account_ids or message.account_id in self.account_ids)
                and (not self.prefixes or message.recipient.startswith(self.prefixes))
                and (not self.classes or message.message_class.value in self.classes)
                and (not self.senders or (message.sender or "") in self.senders))


def is_up(carrier: Carrier) -> bool:
    """A carrier says it is down with `available = False` (an SMPP carrier with no bind);
    one without the attribute is always up."""
    return bool(getattr(carrier, "available", True))


class Router:
    """Picks the carrier for a message: the first matching rule's first carrier that is
    up, else the default carrier and its failover list. When every candidate is down the
    first one is named, so the message waits for it (the carrier answers "retry")."""

    def __init__(self, carriers: Mapping[str, Carrier], default: str,
                 failover: Sequence[str] = (), rules: Sequence[Rule] = ()) -> None:
        for name in [default, *failover, *(c for r in rules for c in r.carriers)]:
            if name not in carriers:
                raise ConfigError(f"[routing] carrier '{name}' is not configured")
        self.carriers = dict(carriers)
        self._default = (default, *failover)
        self._rules = tuple(rules)

    def names(self) -> frozenset[str]:
        """Every carrier a message may be routed to."""
        return frozenset(self._default).union(*(r.carriers for r in self._rules))

    def candidates(self, message: Message) -> tuple[str, ...]:
        for rule in self._rules:
            if rule.matches(message):
                return rule.carriers
        return self._default

    def route(self, message: Message) -> Carrier:
        names = self.candidates(message)
        for name in names:
            if is_up(self.carriers[name]):
                return self.carriers[name]
        return self.carriers[names[0]]

    def split(self, messages: Sequence[Message]) -> dict[str, list[Message]]:
        """Group a claimed batch by carrier name, keeping order within each group."""
        groups: dict[str, list[Message]] = {}
        for message in messages:
            groups.setdefault(self.route(message).name, []).append(message)
        return groups

    def next_after(self, message: Message, tried: str) -> str | None:
        """The next carrier that is up after `tried` on the message's list, if any: where
        a message the first carrier could not even send goes straight away."""
        names = self.candidates(message)
        if tried not in names:
            return None
        for name in names[names.index(tried) + 1:]:
            if is_up(self.carriers[name]):
                return name
        return None
