"""The HTTP listener built from `[http]`, `[xml]` and `[dialects]`: the JSON API
(messages, inbound, opt-outs), the XML API and the vendors' dialects on one server,
sharing the node's core."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.routing import BaseRoute

from adapters.http import (
    account,
    batches,
    consents,
    inbound,
    messages,
    openapi,
    optouts,
    webhooks,
)
from adapters.http.app import HttpContext
from adapters.http.dialects import routing as dialects
from adapters.http.portal import routes as portal
from adapters.http.server import HttpServer
from adapters.xml.native import XmlSettings
from hub.accounts import load_secret
from hub.config import Config
from hub.services import Core
from hub.webhooks import parse_networks


def build(config: Config, core: Core, routes: Sequence[BaseRoute] = ()) -> HttpServer:
    """The listener; `routes` are other adapters' (carriers' callbacks), mounted beside."""
    ctx = HttpContext(
        intake=core.intake, credentials=core.credentials, runner=core.runner,
        metrics=core.metrics, max_body_bytes=config.http.max_body_bytes,
        max_messages_per_request=config.http.max_messages_per_request,
        timezone=config.hub.timezone,
        data_dir=config.data_dir,
        webhook_networks=parse_networks(config.webhooks.allow_networks),
        webhook_secret_overlap=config.webhooks.secret_overlap,
        idempotency_window=config.http.idempotency_window,
        region=config.hub.default_region,
    )
    xml = XmlSettings(config.xml.max_body_bytes, config.xml.max_messages)
    # The JSON API's account lists and settings beside the messages.
    lists = [*inbound.routes(ctx), *optouts.routes(ctx), *consents.routes(ctx),
             *webhooks.routes(ctx),
             *messages.routes(ctx), *batches.routes(ctx), *account.routes(ctx),
             *openapi.routes()]  # its description: /openapi.json and /docs/api
    # The WinSMS, Clickatell and Kannel paths, HTTP and XML, as [dialects] switches them.
    vendors = dialects.routes(ctx, config.dialects, xml)
    # The customers' web pages at /, signed with the data directory's secret.
    pages = (portal.routes(ctx, config.portal, load_secret(config.data_dir))
             if config.portal.enabled else [])
    return HttpServer(ctx, xml, config.http, [*lists, *vendors, *pages, *routes])
