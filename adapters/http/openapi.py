"""The JSON API's description: schemas/openapi.yaml read once when the listener is built,
served as `GET /openapi.json` and as a browsable page, `GET /docs/api`; neither needs a
key (they say what the API is, nothing of any account)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from adapters.http.apidocs import render

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
SPEC = SCHEMAS / "openapi.yaml"
EVENT = "WebhookEvent"  # the component that holds webhook-event.schema.json
# libyaml's safe loader when PyYAML has it: every hub start reads the spec, and the pure
# Python one takes 65 ms over it (tests start hundreds of hubs).
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load(path: Path = SPEC) -> dict[str, Any]:
    """The spec as JSON data, with the webhook event's JSON Schema inlined so that the
    served document stands alone (a client fetching /openapi.json has no neighbour)."""
    text = path.read_text(encoding="utf-8")
    spec: dict[str, Any] = yaml.load(text, Loader=_LOADER)  # noqa: S506 - a safe loader
    schemas = spec["components"]["schemas"]
    ref = schemas[EVENT]["$ref"]
    event = json.loads((path.parent / ref).read_text(encoding="utf-8"))
    schemas[EVENT] = _rebased(event, f"#/components/schemas/{EVENT}/")
    return spec


def _rebased(node: Any, base: str) -> Any:
    """The event schema as a component: its own `#/$defs/...` pointers made absolute in
    the spec, and its `$id`/`$schema` dropped (OpenAPI 3.1's dialect is 2020-12 too)."""
    if isinstance(node, dict):
        return {key: (base + value[2:] if key == "$ref" and isinstance(value, str)
                      and value.startswith("#/") else _rebased(value, base))
                for key, value in node.items() if key not in ("$id", "$schema")}
    if isinstance(node, list):
        return [_rebased(item, base) for item in node]
    return node


def routes(spec: dict[str, Any] | None = None) -> list[BaseRoute]:
    spec = load() if spec is None else spec
    # Both made once: the spec does not change while the hub runs.
    body = json.dumps(spec, ensure_ascii=False, separators=(",", ":")).encode()
    page = render(spec).encode()

    async def openapi_json(request: Request) -> Response:
        return Response(body, media_type="application/json")

    async def docs(request: Request) -> Response:
        return HTMLResponse(page)

    return [Route("/openapi.json", openapi_json, methods=["GET"]),
            Route("/docs/api", docs, methods=["GET"])]

