"""The portal's routes on the HTTP listener: `/` and the customers' pages under it, the
operators' under /admin, and its own stylesheet and script (no build step: plain files
in the package)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from adapters.http.app import HttpContext
from adapters.http.portal.admin import HOME, AdminWeb, Staff
from adapters.http.portal.forms import Form
from adapters.http.portal.operate import Operate
from adapters.http.portal.settings import Settings
from adapters.http.portal.traffic import Traffic
from adapters.http.portal.web import HEADERS, Web
from hub.sections import PortalSection

STATIC = Path(__file__).parent / "static"
Endpoint = Callable[[Request], Awaitable[Response]]
_FILES = {"portal.css": "text/css", "portal.js": "text/javascript"}


def routes(ctx: HttpContext, settings: PortalSection, secret: bytes) -> list[BaseRoute]:
    web = Web(ctx, settings, secret)
    traffic, account = Traffic(web), Settings(web, secret)

    async def home(request: Request) -> Response:
        return RedirectResponse("/messages", 303, headers=HEADERS)

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in _FILES:
            return Response("not found", 404)
        return FileResponse(STATIC / name, media_type=_FILES[name],
                            headers={"Cache-Control": "max-age=300"})

    return [*_customers(web, traffic, account, home, static), *_operators(web, secret)]


def _customers(web: Web, traffic: Traffic, account: Settings, home: Endpoint,
               static: Endpoint) -> list[BaseRoute]:
    page, get, post = web.page, ["GET"], ["POST"]
    return [
        Route("/", home, methods=get),
        Route("/static/portal/{name}", static, methods=get),
        Route("/login", web.login_form, methods=get),
        Route("/login", web.login, methods=post),
        Route("/logout", page(web.logout), methods=post),
        Route("/send", page(traffic.send_form), methods=get),
        Route("/send", page(traffic.send), methods=post),
        Route("/send/file", page(traffic.upload), methods=post),
        Route("/messages", page(traffic.messages), methods=get),
        Route("/messages/{message_id}", page(traffic.message), methods=get),
        Route("/batches", page(traffic.batch_list), methods=get),
        Route("/batches/{batch_id}", page(traffic.batch), methods=get),
        Route("/replies", page(account.replies), methods=get),
        Route("/usage", page(account.usage), methods=get),
        Route("/keys", page(account.keys), methods=get),
        Route("/keys", page(account.create_key), methods=post),
        Route("/keys/{key_id}/revoke", page(account.revoke_key), methods=post),
        Route("/webhooks", page(account.webhooks), methods=get),
        Route("/webhooks", page(account.add_webhook), methods=post),
        Route("/webhooks/{endpoint_id}/remove", page(account.remove_webhook), methods=post),
        Route("/email", page(account.email), methods=get),
        Route("/email", page(account.save_email), methods=post),
    ]


def _operators(web: Web, secret: bytes) -> list[BaseRoute]:
    admin = AdminWeb(web, secret)
    operate, page, get, post = Operate(admin), admin.page, ["GET"], ["POST"]

    async def home(staff: Staff, request: Request, form: Form) -> Response:
        return RedirectResponse(HOME, 303, headers=HEADERS)

    return [
        Route("/admin", page(home), methods=get),
        Route("/admin/login", admin.login_form, methods=get),
        Route("/admin/login", admin.login, methods=post),
        Route("/admin/logout", page(admin.logout), methods=post),
        Route("/admin/accounts", page(operate.accounts), methods=get),
        Route("/admin/accounts/{name}", page(operate.account), methods=get),
        Route("/admin/accounts/{name}/credits", page(operate.add_credit), methods=post),
        Route("/admin/carriers", page(operate.carriers), methods=get),
        Route("/admin/queue", page(operate.queue), methods=get),
        Route("/admin/batches", page(operate.batches), methods=get),
        Route("/admin/messages", page(operate.find_message), methods=get),
        Route("/admin/messages/{message_id}", page(operate.message), methods=get),
    ]
