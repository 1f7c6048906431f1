"""The customers' portal over real HTTP with httpx: sign-in, its failure limit and the
session cookie, CSRF on every post, switched off, no page or id of one account shown to
another (every route of the portal tried), and what each page does: pasted numbers sent
through intake, a key shown once and revoked, usage per day, replies, webhook endpoints,
and the email senders the SMTP listener then takes mail from."""

from __future__ import annotations

import re
import smtplib
from collections.abc import Callable, Iterator
from decimal import Decimal
from unittest.mock import MagicMock

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adapters.carriers.simulator import SimulatorCarrier, SimulatorRules
from adapters.http.portal import routes as portal_routes
from hub.accounts import hash_password
from hub.model import Source
from hub.ports import MessageFilter
from tests.hubthread import HubThread
from tests.integration.test_smtp_mail import DOMAIN, mail, send, smtp_section
from tests.polling import eventually
from tests.portal import csrf, customer, sign_in, token

MakeHub = Callable[..., HubThread]
Opened = list[httpx.Client]
CSV = b"to,text\n0821110001,first row\n0821110002,second row\n"


def _portal_routes(method: str) -> set[str]:
    """The customers' paths the portal serves for `method`, read from its own route
    table, so a page added later is tried by the tests below or fails them."""

    async def endpoint(request: Request) -> Response:
        return Response()

    made = portal_routes._customers(MagicMock(), MagicMock(), MagicMock(), endpoint, endpoint)
    return {r.path for r in made if isinstance(r, Route) and method in (r.methods or ())}


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
    ids = {"message_id": acme["message"], "batch_id": acme["batch"], "key_id": acme["key"],
           "endpoint_id": acme["hook"]}
    by_id = {"/messages/{message_id}", "/batches/{batch_id}"}
    for path in by_id:
        assert beta.get(path.format(**ids)).status_code == 404, path
    token_ = csrf(beta)
    changes = {"/keys/{key_id}/revoke", "/webhooks/{endpoint_id}/remove"}
    for path in changes:
        assert beta.post(path.format(**ids), data={"csrf": token_}).status_code == 404, path
    leaks = ["0829990001", "acme secret text", "27827770001", "asked by phone",
             "acme-list.csv", "0821110001", "acme-hook", "ops@acme.example", *acme.values()]
    lists = {"/messages", "/batches", "/replies", "/usage", "/keys", "/webhooks", "/email",
             "/send"}
    for page in (*lists, "/messages?state=pending", f"/messages?before={acme['message']}"):
        answer = beta.get(page)
        assert answer.status_code == 200, page
        assert not [leak for leak in leaks if leak in answer.text], page
    # Every page of the portal was tried: those without an id are beta's own, and the
    # posts without one (send, a new key...) act on the signed-in account alone.
    not_pages = {"/", "/static/portal/{name}", "/login"}
    assert _portal_routes("GET") - not_pages == lists | by_id
    assert changes <= _portal_routes("POST")
    # acme's own things are all still there and its own.
    acme_client = sign_in(hub, opened, "acme")
    assert acme_client.get(f"/messages/{acme['message']}").status_code == 200
    [made] = [k for k in hub.spool.api_keys("acme") if k.key_id == acme["key"]]
    assert made.revoked_at is None
    assert "acme-hook" in acme_client.get("/webhooks").text
    assert "asked by phone" in acme_client.get("/replies").text
    assert "ops@acme.example" in acme_client.get("/email").text


def test_every_post_without_the_sessions_csrf_token_is_refused(make_hub: MakeHub,
                                                              opened: Opened) -> None:
    hub = make_hub(webhooks={"allow_networks": ["127.0.0.0/8"]})
    customer(hub, "acme")
    customer(hub, "beta")
    acme, beta = sign_in(hub, opened, "acme"), sign_in(hub, opened, "beta")
    others = csrf(beta)  # a real token, but of another session
    key_id = hub.spool.api_keys("acme")[0].key_id
    hook = acme.post("/webhooks", data={"csrf": csrf(acme), "url": "http://127.0.0.1:9/y"})
    assert hook.status_code == 201
    [endpoint] = hub.spool.list_webhooks(None)
    posts = {"/send": {"to": "0821234567", "text": "hi"}, "/keys": {},
             "/email": {"senders": "evil.example"}, "/logout": {},
             "/webhooks": {"url": "http://127.0.0.1:9/x"}, "/keys/{key_id}/revoke": {},
             "/webhooks/{endpoint_id}/remove": {}}
    # Every form of the portal (but sign-in's, below); the upload is multipart.
    assert {*posts, "/send/file", "/login"} == _portal_routes("POST")
    for bad in ({}, {"csrf": ""}, {"csrf": "0" * 64}, {"csrf": others}):
        for path, data in posts.items():
            answer = acme.post(path.format(key_id=key_id, endpoint_id=endpoint.id),
                               data={**data, **bad})
            assert answer.status_code == 403, (path, bad)
        upload = acme.post("/send/file", data=bad, files={"file": ("a.csv", CSV, "text/csv")})
        assert upload.status_code == 403, bad
    assert hub.spool.list_messages(MessageFilter()) == []
    assert [k.revoked_at for k in hub.spool.api_keys("acme")] == [None]  # hub.account's
    assert hub.spool.list_batches(None, 10) == []
    assert hub.spool.list_webhooks(None) == [endpoint]
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


def test_signed_out_the_pages_lead_to_sign_in_even_with_a_copy_of_the_cookie(
        make_hub: MakeHub, opened: Opened) -> None:
    hub = make_hub()
    customer(hub, "acme")
    client = sign_in(hub, opened, "acme")
    elsewhere = sign_in(hub, opened, "acme")  # the same account signed in on another device
    kept = client.cookies["smshub_portal"]  # as a thief, or a shared computer, might keep it
    answer = client.post("/logout", data={"csrf": csrf(client)})
    assert answer.status_code == 303 and answer.headers["location"] == "/login"
    for path in ("/", "/messages", "/send", "/keys"):
        page = client.get(path, follow_redirects=True)
        assert page.url.path == "/login" and "Sign in" in page.text, path
    copy = _client(hub, opened)
    copy.cookies.set("smshub_portal", kept)
    for path in ("/messages", "/keys", "/usage"):
        answer = copy.get(path)
        assert answer.status_code == 303 and answer.headers["location"] == "/login", path
    assert copy.post("/keys", data={"csrf": token(client.get("/login"))}).status_code == 303
    assert elsewhere.get("/messages").status_code == 200  # only that session ended
    [(_, key)] = [(k.key_id, k) for k in hub.spool.api_keys("acme")]  # no key made
    assert key.revoked_at is None


def test_a_changed_password_ends_the_accounts_sessions_at_once(make_hub: MakeHub,
                                                                opened: Opened) -> None:
    hub = make_hub()  # credentials cached for the default minute
    customer(hub, "acme", password="the old password")
    phone, laptop = (sign_in(hub, opened, "acme", "the old password") for _ in range(2))
    assert phone.get("/messages").status_code == 200
    # The old password, used on a dialect's path, sits in the credential cache.
    sent = httpx.get(f"{hub.url}/cgi-bin/sendsms", params={
        "username": "acme", "password": "the old password", "to": "0821234567", "text": "Hi"})
    assert sent.status_code == 202, sent.text
    hub.spool.set_password_hash("acme", hash_password("the new password"))  # as the CLI
    for client in (phone, laptop):
        answer = client.get("/messages")
        assert answer.status_code == 303 and answer.headers["location"] == "/login"
    thief = _client(hub, opened)
    refused = thief.post("/login", data={"csrf": token(thief.get("/login")), "account": "acme",
                                         "password": "the old password"})
    assert refused.status_code == 401  # checked against the spool, not the cache
    assert "smshub_portal" not in thief.cookies
    renewed = sign_in(hub, opened, "acme", "the new password")
    assert renewed.get("/messages").status_code == 200


def test_the_portal_can_be_switched_off(make_hub: MakeHub, opened: Opened) -> None:
    hub = make_hub(portal={"enabled": False})
    key = customer(hub, "acme")
    for path in _portal_routes("GET"):
        answer = httpx.get(hub.url + path.format(name="portal.css", message_id="X",
                                                 batch_id="X"))
        assert answer.status_code == 404, path
    for path in _portal_routes("POST"):
        answer = httpx.post(hub.url + path.format(key_id="X", endpoint_id="X"))
        assert answer.status_code == 404, path
    assert httpx.get(f"{hub.url}/healthz").status_code == 200
    sent = httpx.post(f"{hub.url}/v1/messages", headers={"Authorization": f"Bearer {key}"},
                      json={"to": "0821234567", "text": "the API still works"})
    assert sent.status_code == 202


def test_pasted_numbers_go_through_intake_each_with_its_answer(make_hub: MakeHub,
                                                              opened: Opened) -> None:
    hub = make_hub()
    customer(hub, "acme")  # 100 credits, 0.25 a segment
    acme = sign_in(hub, opened, "acme")
    sent = acme.post("/send", data={"csrf": csrf(acme), "text": "pasted batch",
                                    "to": "0821110001\n082 111 0002, 12;0821110001"})
    assert sent.status_code == 200
    rows = re.findall(r"<tr><td>([^<]+)</td><td>(.*?)</td></tr>", sent.text)
    assert [to for to, _ in rows] == ["0821110001", "082 111 0002", "12", "0821110001"]
    ids = [re.search(r'href="/messages/(\w+)">accepted<', r) for _, r in rows]
    assert ids[0] and ids[1] and ids[3] and ids[2] is None
    assert "refused: invalid_number" in rows[2][1]
    stored = hub.spool.list_messages(MessageFilter())
    assert sorted(m.id for m in stored) == sorted(i.group(1) for i in ids if i)
    assert {(m.recipient, m.text, m.source) for m in stored} == {
        ("+27821110001", "pasted batch", Source.REST), ("+27821110002", "pasted batch",
                                                        Source.REST)}
    assert hub.spool.get_account("acme").balance == Decimal("99.25")  # charged as intake does
    # Refused before intake: no number, no text, more numbers than a pasted batch takes.
    for to, text, why in (("", "x", "at least one number"), ("0821110001", " ", "text"),
                          ("\n".join(["0821110001"] * 1001), "x", "At most 1000")):
        answer = acme.post("/send", data={"csrf": csrf(acme), "to": to, "text": text})
        assert answer.status_code == 422 and why in answer.text, why
    assert len(hub.spool.list_messages(MessageFilter())) == 3


def test_a_new_api_key_is_shown_once_works_and_stops_once_revoked(make_hub: MakeHub,
                                                                 opened: Opened) -> None:
    hub = make_hub(accounts={"credential_cache_seconds": 0})
    customer(hub, "acme")
    acme = sign_in(hub, opened, "acme")
    made = acme.post("/keys", data={"csrf": csrf(acme)})
    assert made.status_code == 201
    found = re.search(r'id="new-key" readonly value="(shk_([0-9a-f]+)_[^"]+)"', made.text)
    assert found
    key, key_id = found.groups()
    listed = acme.get("/keys").text
    assert key_id in listed and key not in listed  # listed by its id, never shown again
    auth = {"Authorization": f"Bearer {key}"}
    message = {"to": "0821234567", "text": "with the portal's key"}
    assert httpx.post(f"{hub.url}/v1/messages", headers=auth, json=message).status_code == 202
    revoked = acme.post(f"/keys/{key_id}/revoke", data={"csrf": csrf(acme)})
    assert revoked.status_code == 303 and revoked.headers["location"] == "/keys"
    assert re.search(rf"shk_{key_id}_…</code></td><td>[^<]+</td>\s*<td>revoked ",
                     acme.get("/keys").text)
    assert httpx.post(f"{hub.url}/v1/messages", headers=auth, json=message).status_code == 401


def test_usage_shows_the_balance_and_each_days_segments_as_a_chart(make_hub: MakeHub,
                                                                  opened: Opened) -> None:
    hub = make_hub()
    key = customer(hub, "acme")
    acme = sign_in(hub, opened, "acme")
    for text in ("short", "x" * 200):  # 1 segment, then 2
        sent = acme.post("/send", data={"csrf": csrf(acme), "to": "0821110001", "text": text})
        assert sent.status_code == 200
    page = acme.get("/usage").text
    assert "Balance: <strong>99.25</strong> credits (0.25 per segment)" in page
    bars = re.findall(r'height="(\d+)"><title>([\d-]+): (\d+) segments</title>', page)
    usage = httpx.get(f"{hub.url}/v1/usage", headers={"Authorization": f"Bearer {key}"}).json()
    assert [(day, int(n)) for _, day, n in bars] == [(d["date"], d["segments"])
                                                     for d in usage["days"]]
    assert len(bars) == 30 and bars[-1][1:] == (usage["to"], "3")
    assert [int(h) for h, _, _ in bars] == [0] * 29 + [120]  # the busiest day fills it
    assert re.search(rf"<tr><td>{usage['to']}</td><td>2</td><td>3</td><td>0.75</td></tr>", page)


def test_replies_are_listed_with_the_message_they_answer(make_hub: MakeHub,
                                                         opened: Opened) -> None:
    hub = make_hub()
    hub.account("acme", sender_ids=("27830000001",))
    hub.spool.set_password_hash("acme", hash_password("s3cret-pass!"))
    acme = sign_in(hub, opened, "acme")
    sent = acme.post("/send", data={"csrf": csrf(acme), "to": "0821110001",
                                    "text": "Reply YES", "from": "27830000001"})
    message = re.search(r'href="/messages/(\w+)"', sent.text)
    assert message
    carrier = SimulatorCarrier(SimulatorRules())
    assert hub.hub.services is not None
    hub.run(carrier.start(hub.hub.services.dispatcher))
    hub.run(carrier.inject_inbound("+27821110001", "27830000001", "yes please"))
    hub.run(carrier.inject_inbound("+27821110001", "27830000001", "STOP"))
    page = acme.get("/replies").text
    replies = page[:page.index("Opted out")]
    assert "yes please" in replies and f'href="/messages/{message.group(1)}"' in replies
    optouts = page[page.index("Opted out"):]
    assert "+27821110001" in optouts and "Nobody has opted out" not in optouts


def test_webhook_endpoints_are_added_with_the_secret_shown_once_and_removed(
        make_hub: MakeHub, opened: Opened) -> None:
    hub = make_hub(webhooks={"allow_networks": ["127.0.0.0/8"]})
    customer(hub, "acme")
    acme = sign_in(hub, opened, "acme")
    added = acme.post("/webhooks", data={"csrf": csrf(acme), "url": "http://127.0.0.1:9/hook",
                                         "description": "our CRM"})
    assert added.status_code == 201
    secret = re.search(r'id="secret" readonly value="([^"]+)"', added.text)
    assert secret and len(secret.group(1)) >= 32
    [endpoint] = hub.spool.list_webhooks(hub.spool.get_account("acme").id)
    assert endpoint.url == "http://127.0.0.1:9/hook"
    listed = acme.get("/webhooks").text
    assert "http://127.0.0.1:9/hook" in listed and "our CRM" in listed
    assert secret.group(1) not in listed
    refused = acme.post("/webhooks", data={"csrf": csrf(acme), "url": "http://10.1.2.3/x"})
    assert refused.status_code == 422 and len(hub.spool.list_webhooks(None)) == 1
    removed = acme.post(f"/webhooks/{endpoint.id}/remove", data={"csrf": csrf(acme)})
    assert removed.status_code == 303
    assert "No endpoints." in acme.get("/webhooks").text
    assert hub.spool.list_webhooks(None) == []


def test_email_senders_saved_in_the_portal_may_then_send_sms_by_mail(
        make_hub: MakeHub, opened: Opened, tls_files: dict[str, str]) -> None:
    hub = make_hub(smtp=smtp_section(**tls_files, settings_cache_seconds=0))
    customer(hub, "acme")
    acme = sign_in(hub, opened, "acme")
    assert hub.hub.smtp_port is not None

    def mailed(sender: str) -> int:
        with smtplib.SMTP("127.0.0.1", hub.hub.smtp_port, timeout=10) as client:
            client.ehlo("client.example")
            if client.mail(sender)[0] != 250:
                return 550
            return client.rcpt(f"27821234567@{DOMAIN}")[0]

    assert mailed("ops@acme.co.za") != 250  # nobody allowed yet
    saved = acme.post("/email", data={"csrf": csrf(acme),
                                      "senders": "Ops@Acme.co.za\nalerts.acme.co.za"})
    assert saved.status_code == 303
    page = acme.get("/email").text
    assert "alerts.acme.co.za\nops@acme.co.za</textarea>" in page  # kept lower-cased, sorted
    assert mailed("ops@acme.co.za") == 250 and mailed("nagios@alerts.acme.co.za") == 250
    assert mailed("someone@elsewhere.example") != 250
    with smtplib.SMTP("127.0.0.1", hub.hub.smtp_port, timeout=10) as client:
        client.ehlo("client.example")
        code, _ = send(client, mail("Disk full"), [f"27821234567@{DOMAIN}"])
    assert code == 250
    eventually(lambda: len(hub.spool.list_messages(MessageFilter())) == 1, what="the SMS")
    # A line that is neither an address nor a domain: refused, the list unchanged.
    bad = acme.post("/email", data={"csrf": csrf(acme), "senders": "not an address"})
    assert bad.status_code == 422 and "neither an address nor a domain" in bad.text
    mail_settings = hub.spool.get_mail_settings(hub.spool.get_account("acme").id)
    assert mail_settings.allowed_senders == ("alerts.acme.co.za", "ops@acme.co.za")
