"""Placeholders in the strings an HTTP upstream is configured with (`{to}`, `{EventId}`;
`{{` and `}}` for literal braces) and dotted paths into JSON answers (`ErrorReport.Faults`,
`messages.0.id`)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")

# What a request template may say about one message.
MESSAGE_FIELDS = frozenset({"to", "from", "text", "id", "client_ref"})
# A JSON body's placeholder for the list of per-message objects (a batch).
MESSAGES = "{messages}"


def names(template: str) -> list[str]:
    """The placeholder names in `template`, in order; ValueError if a brace is unpaired."""
    found = [m.group(1) for m in _TOKEN.finditer(template) if m.group(1) is not None]
    if "{" in _TOKEN.sub("", template) or "}" in _TOKEN.sub("", template):
        raise ValueError(f"unpaired brace in '{template}' (write {{{{ or }}}} for a brace)")
    return found


def render(template: str, values: Mapping[str, str]) -> str:
    """`template` with each placeholder replaced; KeyError names one without a value."""

    def value(match: re.Match[str]) -> str:
        token = match.group(0)
        if token in ("{{", "}}"):
            return token[0]
        return values[match.group(1)]

    return _TOKEN.sub(value, template)


def check(template: str, allowed: frozenset[str]) -> str | None:
    """Why `template` cannot be rendered from `allowed` names, or None if it can."""
    try:
        unknown = [n for n in names(template) if n not in allowed]
    except ValueError as exc:
        return str(exc)
    if unknown:
        return (f"unknown placeholder {{{unknown[0]}}} in '{template}'; "
                f"allowed: {', '.join('{' + a + '}' for a in sorted(allowed))}")
    return None


def render_json(template: Any, values: Mapping[str, str], items: list[Any] | None = None) -> Any:
    """A JSON template (tables, lists, strings, numbers) with its strings rendered; a string
    that is exactly `{messages}` becomes `items`."""
    if isinstance(template, str):
        if template == MESSAGES and items is not None:
            return items
        return render(template, values)
    if isinstance(template, Mapping):
        return {k: render_json(v, values, items) for k, v in template.items()}
    if isinstance(template, list):
        return [render_json(v, values, items) for v in template]
    return template


def json_strings(template: Any) -> list[str]:
    """Every string in a JSON template (to check their placeholders)."""
    if isinstance(template, str):
        return [template]
    if isinstance(template, Mapping):
        return [s for v in template.values() for s in json_strings(v)]
    if isinstance(template, list):
        return [s for v in template for s in json_strings(v)]
    return []


_MISSING = object()


def path(document: Any, dotted: str) -> Any:
    """The value at a dotted path (`a.b.0.c`), or None when any step is absent."""
    node = document
    for step in dotted.split("."):
        if isinstance(node, Mapping):
            node = node.get(step, _MISSING)
        elif isinstance(node, list) and step.isdigit() and int(step) < len(node):
            node = node[int(step)]
        else:
            return None
        if node is _MISSING:
            return None
    return node


def scalar(value: Any) -> str | None:
    """A JSON scalar as the text a provider means by it (12345, "abc"); None otherwise."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | str):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else str(value)
    return None
