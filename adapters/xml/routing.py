"""The native XML API's routes, and the body limit of every XML path: the native API's
and the WinSMS, Clickatell and Kannel dialects' (their routes are mounted, each vendor
switched on or off, by adapters/http/dialects/routing.py)."""

from __future__ import annotations

from starlette.routing import BaseRoute

from adapters.http.app import BodyRule, HttpContext
from adapters.xml import clickatell, kannel, native, winsms


def routes(ctx: HttpContext, settings: native.XmlSettings) -> list[BaseRoute]:
    return native.routes(ctx, settings)


def body_rules(settings: native.XmlSettings) -> list[BodyRule]:
    # Clickatell's /xml/xml first: the native rule's /xml prefix would claim it.
    return [*clickatell.body_rules(settings.max_body_bytes), *native.body_rules(settings),
            *kannel.body_rules(settings.max_body_bytes),
            *winsms.body_rules(settings.max_body_bytes)]
