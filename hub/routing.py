"""Routing: which carrier takes a message. Today one default carrier; prefix and
per-account rules slot in here without touching the dispatcher."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from hub.errors import ConfigError
from hub.model import Message
from hub.ports import Carrier


class Router:
    """Picks the carrier for a message: the default carrier for now."""

    def __init__(self, carriers: Mapping[str, Carrier], default: str) -> None:
        if default not in carriers:
            raise ConfigError(f"[routing] default_carrier '{default}' is not configured")
        self.carriers = dict(carriers)
        self._default = carriers[default]

    def route(self, message: Message) -> Carrier:
        return self._default

    def split(self, messages: Sequence[Message]) -> dict[str, list[Message]]:
        """Group a claimed batch by carrier name, keeping order within each group."""
        groups: dict[str, list[Message]] = {}
        for message in messages:
            groups.setdefault(self.route(message).name, []).append(message)
        return groups
