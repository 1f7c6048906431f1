"""Every XML endpoint in the order the HTTP app must try them: the native API and the
WinSMS, Clickatell and Kannel dialects, with the body limit of each."""

from __future__ import annotations

from starlette.routing import BaseRoute

from adapters.http.app import BodyRule, HttpContext
from adapters.xml import clickatell, kannel, native, winsms


def routes(ctx: HttpContext, settings: native.XmlSettings) -> list[BaseRoute]:
    return [*native.routes(ctx, settings), *winsms.routes(ctx),
            *clickatell.routes(ctx, settings.max_messages),
            *kannel.routes(ctx, settings.max_messages)]


def body_rules(settings: native.XmlSettings) -> list[BodyRule]:
    # Clickatell's /xml/xml first: the native rule's /xml prefix would claim it.
    return [*clickatell.body_rules(settings.max_body_bytes), *native.body_rules(settings),
            *kannel.body_rules(settings.max_body_bytes),
            *winsms.body_rules(settings.max_body_bytes)]
