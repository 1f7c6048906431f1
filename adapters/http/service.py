"""The HTTP listener built from `[http]` and `[xml]`: the JSON API and every XML dialect
on one server, sharing the node's core."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.routing import BaseRoute

from adapters.http.app import HttpContext
from adapters.http.server import HttpServer
from adapters.xml.native import XmlSettings
from hub.config import Config
from hub.services import Core


def build(config: Config, core: Core, routes: Sequence[BaseRoute] = ()) -> HttpServer:
    """The listener; `routes` are other adapters' (carriers' callbacks), mounted beside."""
    ctx = HttpContext(
        intake=core.intake, credentials=core.credentials, runner=core.runner,
        metrics=core.metrics, max_body_bytes=config.http.max_body_bytes,
        max_messages_per_request=config.http.max_messages_per_request,
        timezone=config.hub.timezone, body_timeout=config.http.body_timeout,
        data_dir=config.data_dir,
    )
    xml = XmlSettings(config.xml.max_body_bytes, config.xml.max_messages)
    return HttpServer(ctx, xml, config.http, routes)
