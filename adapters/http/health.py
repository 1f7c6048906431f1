"""The HTTP listener of a node without the ingress role (`--role dispatch`): /healthz,
/readyz and /metrics, and the carriers' callbacks, but no way in for customers' messages."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.routing import BaseRoute

from adapters.http.app import HttpContext
from adapters.http.server import HttpServer
from adapters.xml.native import XmlSettings
from hub.config import Config
from hub.services import Core


def build(config: Config, core: Core, routes: Sequence[BaseRoute] = ()) -> HttpServer:
    """On `[http]`'s host and port; `routes` are the carriers' callbacks."""
    ctx = HttpContext(
        intake=core.intake, credentials=core.credentials, runner=core.runner,
        metrics=core.metrics, max_body_bytes=config.http.max_body_bytes,
        max_messages_per_request=config.http.max_messages_per_request,
        timezone=config.hub.timezone,
        data_dir=config.data_dir, region=config.hub.default_region,
    )
    xml = XmlSettings(config.xml.max_body_bytes, config.xml.max_messages)
    return HttpServer(ctx, xml, config.http, routes, api=False)
