"""The vendors' paths, HTTP and XML forms, each vendor mounted only when `[dialects]`
switches it on (a vendor switched off answers 404 on all of its paths)."""

from __future__ import annotations

from starlette.routing import BaseRoute

from adapters.http.app import HttpContext
from adapters.http.dialects import clickatell, kannel, winsms
from adapters.http.logins import Logins
from adapters.xml import winsms as winsms_xml
from adapters.xml.native import XmlSettings
from hub.sections import DialectsSection


def routes(ctx: HttpContext, settings: DialectsSection, xml: XmlSettings) -> list[BaseRoute]:
    logins = Logins(ctx.credentials, settings)  # one count per address, every dialect
    out: list[BaseRoute] = []
    if settings.winsms:
        out += [*winsms_xml.routes(ctx, logins), *winsms.routes(ctx, logins)]
    if settings.clickatell:
        out += clickatell.routes(ctx, xml.max_messages, logins)
    if settings.kannel:
        out += kannel.routes(ctx, xml.max_messages, logins)
    return out
