"""The customers' portal over real HTTP with httpx: sign-in, its failure limit and the
session cookie, CSRF on every post, switched off, and no page or id of one account
shown to another."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import httpx
import pytest

from hub.ports import MessageFilter
from tests.hubthread import HubThread
from tests.portal import csrf, customer, sign_in, token

MakeHub = Callable[..., HubThread]
Opened = list[httpx.Client]
CSV = b"to,text\n0821110001,first row\n0821110002,second row\n"


@pytest.fixture
def opened() -> Iterator[list[httpx.Client]]:
    clients: list[httpx.Client] = []
    yield clients
    for client in clients:
        client.close()


def _client(hub: HubThread, opened: list[httpx.Client]) -> httpx.Client:
    client = httpx.Client(base_url=hub.url, timeout=10)
    opened.append(client)
    return client


def _acme_things(hub: HubThread, opened: list[httpx.Client]) -> dict[str, str]:
    """acme's message, batch, key and webhook, made through its own portal pages."""
    key = customer(hub, "acme")
    optout = httpx.post(f"{hub.url}/v1/optouts", headers={"Authorization": f"Bearer {key}"},
                        json={"number": "0827770001", "reason": "asked by phone"})
    assert optout.status_code == 201, optout.text
    acme = sign_in(hub, opened, "acme")
    sent = acme.post("/send", data={"csrf": csrf(acme), "to": "0829990001",
                                    "text": "acme secret text"})
    assert sent.status_code == 200
    message = re.search(r'href="/messages/([0-9A-Z]+)"', sent.text)
    assert message
    upload = acme.post("/send/file", data={"csrf": csrf(acme)},
                       files={"file": ("acme-list.csv", CSV, "text/csv")})
    assert upload.status_code == 303
    key = acme.post("/keys", data={"csrf": csrf(acme)})
    assert key.status_code == 201
    key_id = re.search(r"shk_([0-9a-f]+)_", key.text)
    assert key_id
    hook = acme.post("/webhooks", data={"csrf": csrf(acme),
                                        "url": "http://127.0.0.1:9/acme-hook"})
    assert hook.status_code == 201, hook.text
    hook_id = re.search(r'/webhooks/([^/"]+)/remove', hook.text)
    assert hook_id
    senders = acme.post("/email", data={"csrf": csrf(acme), "senders": "ops@acme.example"})
    assert senders.status_code == 303
    return {"message": message.group(1), "batch": upload.headers["location"].split("/")[-1],
            "key": key_id.group(1), "hook": hook_id.group(1)}


def test_no_page_or_id_of_one_account_is_shown_to_another(make_hub: MakeHub,
                                                          opened: Opened) -> None:
    hub = make_hub(webhooks={"allow_networks": ["127.0.0.0/8"]})
    acme = _acme_things(hub, opened)
    customer(hub, "beta")
    beta = sign_in(hub, opened, "beta")
    for path in (f"/messages/{acme['message']}", f"/batches/{acme['batch']}"):
        assert beta.get(path).status_code == 404, path
    token_ = csrf(beta)
    for path in (f"/keys/{acme['key']}/revoke", f"/webhooks/{acme['hook']}/remove"):
        assert beta.post(path, data={"csrf": token_}).status_code == 404, path
    leaks = ["0829990001", "acme secret text", "27827770001", "asked by phone",
             "acme-list.csv", "0821110001", "acme-hook", "ops@acme.example", *acme.values()]
    for page in ("/messages", "/batches", "/replies", "/usage", "/keys", "/webhooks",
                 "/email", "/send", "/messages?state=pending"):
        answer = beta.get(page)
        assert answer.status_code == 200, page
        assert not [leak for leak in leaks if leak in answer.text], page
    # acme's own things are all still there and its own.
    acme_client = sign_in(hub, opened, "acme")
    assert acme_client.get(f"/messages/{acme['message']}").status_code == 200
    assert "active" in acme_client.get("/keys").text
    assert "acme-hook" in acme_client.get("/webhooks").text
    assert "asked by phone" in acme_client.get("/replies").text
    assert "ops@acme.example" in acme_client.get("/email").text


def test_every_post_without_the_sessions_csrf_token_is_refused(make_hub: MakeHub,
                                                              opened: Opened) -> None:
    hub = make_hub()
    customer(hub, "acme")
    customer(hub, "beta")
    acme, beta = sign_in(hub, opened, "acme"), sign_in(hub, opened, "beta")
    others = csrf(beta)  # a real token, but of another session
    key_id = hub.spool.api_keys("acme")[0].key_id
    for bad in ({}, {"csrf": ""}, {"csrf": "0" * 64}, {"csrf": others}):
        for path, data in (("/send", {"to": "0821234567", "text": "hi"}), ("/keys", {}),
                           ("/email", {"senders": "evil.example"}), ("/logout", {}),
                           ("/webhooks", {"url": "http://127.0.0.1:9/x"}),
                           (f"/keys/{key_id}/revoke", {})):
            answer = acme.post(path, data={**data, **bad})
            assert answer.status_code == 403, (path, bad)
        upload = acme.post("/send/file", data=bad, files={"file": ("a.csv", CSV, "text/csv")})
        assert upload.status_code == 403, bad
    assert hub.spool.list_messages(MessageFilter()) == []
    assert [k.revoked_at for k in hub.spool.api_keys("acme")] == [None]  # hub.account's
    assert hub.spool.list_batches(None, 10) == []
    assert hub.spool.list_webhooks(None) == []
    assert hub.spool.get_mail_settings(hub.spool.get_account("acme").id).allowed_senders == ()
    assert acme.get("/messages").status_code == 200  # still signed in: logout refused too
    # The sign-in form's own token: its cookie and its field must match.
    fresh = _client(hub, opened)
    fresh.get("/login")
    answer = fresh.post("/login", data={"csrf": "forged", "account": "acme",
                                        "password": "s3cret-pass!"})
    assert answer.status_code == 403


def test_sign_in_failures_are_limited_per_address(make_hub: MakeHub, opened: Opened) -> None:
    hub = make_hub(portal={"login_failures_per_ip": 3})
    customer(hub, "acme")
    client = _client(hub, opened)
    for _ in range(3):
        page = client.get("/login")
        answer = client.post("/login", data={"csrf": token(page), "account": "acme",
                                             "password": "wrong"})
        assert answer.status_code == 401
        assert "Wrong account name or password" in answer.text
    page = client.get("/login")
    answer = client.post("/login", data={"csrf": token(page), "account": "acme",
                                         "password": "s3cret-pass!"})
    assert answer.status_code == 429  # not even checked


def test_the_session_cookie_is_signed_httponly_and_samesite(make_hub: MakeHub,
                                                           opened: Opened) -> None:
    hub = make_hub(portal={"secure_cookies": True})
    customer(hub, "acme")
    client = _client(hub, opened)
    page = client.get("/login")
    # Secure cookies are not sent back over plain HTTP: handed back as a TLS proxy would.
    client.cookies.set("smshub_login", page.cookies["smshub_login"])
    answer = client.post("/login", data={"csrf": token(page), "account": "acme",
                                         "password": "s3cret-pass!"})
    cookie = next(v for v in answer.headers.get_list("set-cookie")
                  if v.startswith("smshub_portal="))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" in cookie
    value = cookie.split(";")[0].split("=", 1)[1]
    tampered = value[:-1] + ("0" if value[-1] != "0" else "1")
    forged = httpx.get(f"{hub.url}/messages", cookies={"smshub_portal": tampered})
    assert forged.status_code == 303 and forged.headers["location"] == "/login"
    signed = httpx.get(f"{hub.url}/messages", cookies={"smshub_portal": value})
    assert signed.status_code == 200 and signed.headers["cache-control"] == "no-store"


def test_signed_out_the_pages_lead_to_sign_in(make_hub: MakeHub, opened: Opened) -> None:
    hub = make_hub()
    customer(hub, "acme")
    client = sign_in(hub, opened, "acme")
    answer = client.post("/logout", data={"csrf": csrf(client)})
    assert answer.status_code == 303 and answer.headers["location"] == "/login"
    for path in ("/", "/messages", "/send", "/keys"):
        page = client.get(path, follow_redirects=True)
        assert page.url.path == "/login" and "Sign in" in page.text, path


def test_the_portal_can_be_switched_off(make_hub: MakeHub, opened: Opened) -> None:
    hub = make_hub(portal={"enabled": False})
    assert httpx.get(f"{hub.url}/login").status_code == 404
    assert httpx.get(f"{hub.url}/healthz").status_code == 200
