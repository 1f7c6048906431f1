"""The operators' pages at /admin over real HTTP with httpx: their own sign-in (a bad
password refused, failures limited), every page refused without an operator's session
and with a customer's, CSRF on every post, credit added with a reason into the ledger,
one message's audit trail and the queue's last hour counted from its events; operators
made with `smshub operator`, and the CLI's credit in the same ledger."""

from __future__ import annotations

import io
import json
import re
import shlex
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from unittest.mock import MagicMock

import httpx
import lxml.html
import pytest
from starlette.routing import Route

from adapters.http.portal import routes as portal_routes
from hub.accounts import hash_password
from tests.clirun import hub_cli
from tests.hubthread import HubThread
from tests.integration.conftest import test_config as hub_config
from tests.polling import eventually
from tests.portal import (
    OPERATOR_PASSWORD,
    admin_sign_in,
    csrf,
    customer,
    operator,
    sign_in,
    token,
)

ROOT = Path(__file__).resolve().parents[2]
MakeHub = Callable[..., HubThread]
Opened = list[httpx.Client]
PAGES = (
    "/admin",
    "/admin/accounts",
    "/admin/accounts/acme",
    "/admin/carriers",
    "/admin/queue",
    "/admin/batches",
    "/admin/messages",
    "/admin/messages?id=X",
    "/admin/messages/{message}",
)
POSTS = ("/admin/accounts/acme/credits", "/admin/logout")


@pytest.fixture
def opened() -> Iterator[list[httpx.Client]]:
    clients: list[httpx.Client] = []
    yield clients
    for client in clients:
        client.close()


def _client(hub: HubThread, opened: Opened) -> httpx.Client:
    client = httpx.Client(base_url=hub.url, timeout=10)
    opened.append(client)
    return client


def _send(hub: HubThread, key: str, count: int = 1) -> list[str]:
    """Messages sent over the JSON API, each waited for until delivered."""
    ids = []
    for n in range(count):
        sent = httpx.post(
            f"{hub.url}/v1/messages",
            headers={"Authorization": f"Bearer {key}"},
            json={"to": f"08299900{n:02d}", "text": "operator test"},
        )
        assert sent.status_code == 202, sent.text
        ids.append(sent.json()["id"])
    for message_id in ids:
        eventually(
            lambda i=message_id: hub.spool.get_message(i).status.value == "delivered",
            what="delivered",
        )
    return ids


def test_an_operator_adds_credit_with_a_reason_kept_in_the_ledger(
    make_hub: MakeHub, opened: Opened
) -> None:
    hub = make_hub()
    customer(hub, "acme")  # 100 credits
    operator(hub)
    admin = admin_sign_in(hub, opened)
    listing = admin.get("/admin/accounts")
    assert listing.status_code == 200 and 'href="/admin/accounts/acme"' in listing.text
    assert re.search(r"acme</a></td><td[^>]*>100(\.0+)?</td>", listing.text), listing.text
    page = admin.get("/admin/accounts/acme")
    added = admin.post(
        "/admin/accounts/acme/credits",
        data={"csrf": token(page), "amount": "50.5", "reason": "invoice 42"},
    )
    assert added.status_code == 303 and added.headers["location"] == "/admin/accounts/acme"
    assert hub.spool.get_account("acme").balance == Decimal("150.5")
    [line] = hub.spool.credit_changes(hub.spool.get_account("acme").id, 10)
    assert (line.amount, line.balance, line.reason, line.actor) == (
        Decimal("50.5"),
        Decimal("150.5"),
        "invoice 42",
        "operator olga",
    )
    ledger = admin.get("/admin/accounts/acme").text
    assert "+50.5" in ledger and "invoice 42" in ledger and "operator olga" in ledger
    # Refused, and nothing changed: no reason, no number, more than the balance.
    for amount, reason, why in (
        ("10", " ", "Say why"),
        ("ten", "x", "Enter an amount"),
        ("0.00001", "x", "4 decimal places"),
        ("-1000", "refund", "cannot take 1000"),
    ):
        answer = admin.post(
            "/admin/accounts/acme/credits",
            data={"csrf": token(page), "amount": amount, "reason": reason},
        )
        assert answer.status_code == 422 and why in answer.text, (amount, answer.text[:300])
    assert hub.spool.get_account("acme").balance == Decimal("150.5")
    assert admin.get("/admin/accounts/nobody").status_code == 404


def test_every_operator_page_needs_an_operators_session(make_hub: MakeHub, opened: Opened) -> None:
    hub = make_hub()
    key = customer(hub, "acme")
    operator(hub)
    [message] = _send(hub, key)
    pages = [p.format(message=message) for p in PAGES]
    shopper = sign_in(hub, opened, "acme")
    customer_cookie = shopper.cookies["smshub_portal"]
    admin = admin_sign_in(hub, opened)
    operator_cookie = admin.cookies["smshub_operator"]
    # Nobody signed in; a customer signed in; a customer's cookie under the operators'
    # name; a cookie without its signature's last character.
    strangers = [_client(hub, opened), shopper]
    for name, value in (
        ("smshub_operator", customer_cookie),
        ("smshub_operator", operator_cookie[:-1]),
    ):
        stranger = _client(hub, opened)
        stranger.cookies.set(name, value)
        strangers.append(stranger)
    for stranger in strangers:
        for path in pages:
            answer = stranger.get(path)
            assert answer.status_code == 303, (path, answer.text[:200])
            assert answer.headers["location"] == "/admin/login", path
        for path in POSTS:
            answer = stranger.post(
                path, data={"csrf": csrf(shopper), "amount": "1000", "reason": "free credit"}
            )
            assert answer.headers["location"] == "/admin/login", path
    assert hub.spool.get_account("acme").balance == Decimal("99.75")  # one message sent
    # Those were every page and post of the operators' route table (but the sign-in's).
    served = {
        (r.path, method)
        for r in portal_routes._operators(MagicMock(), b"k" * 32)
        if isinstance(r, Route) and r.path != "/admin/login"
        for method in r.methods or ()
        if method != "HEAD"
    }
    tried = {
        (p.replace("acme", "{name}").replace("{message}", "{message_id}"), "GET")
        for p in PAGES
        if "?" not in p
    }
    assert served == tried | {(p.replace("acme", "{name}"), "POST") for p in POSTS}
    # The operator sees every one of them.
    for path in pages:
        answer = admin.get(path, follow_redirects=True)
        assert answer.status_code == (404 if path.endswith("=X") else 200), path
    # And an operator's session opens no customer page, even under the customers' name.
    disguised = _client(hub, opened)
    disguised.cookies.set("smshub_portal", operator_cookie)
    for client in (admin, disguised):
        for path in ("/messages", f"/messages/{message}", "/keys", "/usage"):
            answer = client.get(path)
            assert answer.status_code == 303 and answer.headers["location"] == "/login"


def test_operator_sign_in_refuses_a_bad_password_and_limits_failures(
    make_hub: MakeHub, opened: Opened
) -> None:
    hub = make_hub(portal={"login_failures_per_ip": 3})
    customer(hub, "acme")
    operator(hub)
    client = _client(hub, opened)
    # A wrong password, an unknown operator, a customer's own name and password.
    for name, password in (
        ("olga", "wrong-password"),
        ("nobody", OPERATOR_PASSWORD),
        ("acme", "s3cret-pass!"),
    ):
        page = client.get("/admin/login")
        answer = client.post(
            "/admin/login", data={"csrf": token(page), "operator": name, "password": password}
        )
        assert answer.status_code == 401, name
        assert "Wrong operator name or password" in answer.text
        assert "smshub_operator" not in client.cookies
    page = client.get("/admin/login")
    answer = client.post(
        "/admin/login",
        data={"csrf": token(page), "operator": "olga", "password": OPERATOR_PASSWORD},
    )
    assert answer.status_code == 429  # not even checked
    # Counted apart: the customers' sign-in from the same address still works.
    sign_in(hub, opened, "acme")


def test_every_operator_post_needs_the_sessions_csrf_token(
    make_hub: MakeHub, opened: Opened
) -> None:
    hub = make_hub()
    customer(hub, "acme")
    operator(hub)
    operator(hub, "oscar")
    admin, other = admin_sign_in(hub, opened), admin_sign_in(hub, opened, "oscar")
    others = token(other.get("/admin/accounts"))
    for bad in ({}, {"csrf": ""}, {"csrf": "0" * 64}, {"csrf": others}):
        for path in POSTS:
            answer = admin.post(path, data={**bad, "amount": "5", "reason": "x"})
            assert answer.status_code == 403, (path, bad)
    assert hub.spool.get_account("acme").balance == Decimal(100)
    assert admin.get("/admin/accounts").status_code == 200  # sign-out refused too
    fresh = _client(hub, opened)
    fresh.get("/admin/login")
    answer = fresh.post(
        "/admin/login", data={"csrf": "forged", "operator": "olga", "password": OPERATOR_PASSWORD}
    )
    assert answer.status_code == 403


def test_the_operator_cookie_is_strict_and_ends_signed_out_with_the_operator_or_password(
    make_hub: MakeHub, opened: Opened
) -> None:
    hub = make_hub()
    operator(hub)
    operator(hub, "oscar")
    client = _client(hub, opened)
    page = client.get("/admin/login")
    answer = client.post(
        "/admin/login",
        data={"csrf": token(page), "operator": "olga", "password": OPERATOR_PASSWORD},
    )
    cookie = next(
        v for v in answer.headers.get_list("set-cookie") if v.startswith("smshub_operator=")
    )
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/admin" in cookie
    kept = client.cookies["smshub_operator"]
    answer = client.post("/admin/logout", data={"csrf": token(client.get("/admin/queue"))})
    assert answer.status_code == 303 and answer.headers["location"] == "/admin/login"
    assert client.get("/admin/accounts").headers["location"] == "/admin/login"
    copy = _client(hub, opened)  # a copy of the cookie kept from before sign out
    copy.cookies.set("smshub_operator", kept)
    assert copy.get("/admin/accounts").headers["location"] == "/admin/login"
    oscar = admin_sign_in(hub, opened, "oscar")
    hub.spool.remove_operator("oscar")  # `smshub operator remove oscar`
    assert oscar.get("/admin/accounts").headers["location"] == "/admin/login"
    olga = admin_sign_in(hub, opened)
    assert olga.get("/admin/accounts").status_code == 200
    hub.spool.set_operator_password("olga", hash_password("a new password"))  # passwd
    assert olga.get("/admin/accounts").headers["location"] == "/admin/login"
    admin_sign_in(hub, opened, password="a new password")


def test_a_messages_audit_trail_lists_its_events_in_order(
    make_hub: MakeHub, opened: Opened
) -> None:
    hub = make_hub()
    key = customer(hub, "acme")
    operator(hub)
    [message] = _send(hub, key)
    admin = admin_sign_in(hub, opened)
    found = admin.get("/admin/messages", params={"id": f" {message.lower()} "})
    assert found.status_code == 303 and found.headers["location"] == f"/admin/messages/{message}"
    page = admin.get(found.headers["location"])
    assert page.status_code == 200 and 'href="/admin/accounts/acme"' in page.text
    events = re.findall(r"<tr><td>(\d+)</td><td>[^<]+</td><td>([a-z]+)</td>", page.text)
    statuses = [e.status.value for e in hub.spool.events(message)]
    assert [s for _, s in events] == statuses
    assert statuses[0] == "accepted" and statuses[-1] == "delivered" and "sending" in statuses
    assert admin.get("/admin/messages/01NOSUCHMESSAGE0000000000").status_code == 404


def test_the_queue_page_counts_the_last_hours_hand_overs(make_hub: MakeHub, opened: Opened) -> None:
    hub = make_hub()
    key = customer(hub, "acme")
    operator(hub)
    _send(hub, key, 5)
    admin = admin_sign_in(hub, opened)
    page = admin.get("/admin/queue").text
    rows = re.findall(
        r'<tr><td>[^<]+</td><td class="num">(\d+)</td><td class="num">(\d+)'
        r'</td><td class="num">(\d+)</td></tr>',
        page,
    )
    assert len(rows) == 60
    assert sum(int(entered) for entered, _, _ in rows) == 5
    assert sum(int(handed) for _, handed, _ in rows) == 5
    assert rows[0][2] == "0"  # the newest minute first: nothing left in the queue
    assert "Handed to carriers in the last hour: <strong>5</strong>" in page
    assert page.count("submitted</title></rect>") == 60


def test_the_carriers_page_shows_this_nodes_carriers(make_hub: MakeHub, opened: Opened) -> None:
    hub = make_hub()
    key = customer(hub, "acme")
    operator(hub)
    _send(hub, key, 2)
    page = admin_sign_in(hub, opened).get("/admin/carriers").text
    simulator = page[page.index('id="carrier-simulator"') :]
    assert 'state-delivered">up</span>' in simulator
    assert 'id="depth">0<' in page
    assert "<td>test-node</td><td>all</td>" in page  # from the spool's nodes table


def test_the_operator_pages_are_off_with_the_portal(make_hub: MakeHub) -> None:
    hub = make_hub(portal={"enabled": False})
    for path in ("/admin", "/admin/login", "/admin/accounts"):
        assert httpx.get(f"{hub.url}{path}").status_code == 404, path


def test_operators_made_with_the_cli_sign_in_and_see_the_clis_credit(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    hubs: list[HubThread],
    opened: Opened,
) -> None:
    data = tmp_path / "hub"
    cli = hub_cli(tmp_path, monkeypatch, capsys, toml=f'[hub]\ndata_dir = "{data}"\n')

    def typed(password: str, *argv: str) -> tuple[int, Any, str]:
        monkeypatch.setattr("sys.stdin", io.StringIO(password + "\n"))
        return cli(*argv)

    assert typed("short", "operator", "add", "olga")[0] == 1  # under 8 characters
    assert typed("first-password", "operator", "add", "olga")[0] == 0
    assert typed("first-password", "operator", "add", "olga")[0] == 1  # taken
    assert typed(OPERATOR_PASSWORD, "operator", "add", "oscar")[0] == 0
    assert typed(OPERATOR_PASSWORD, "operator", "passwd", "olga")[0] == 0
    assert cli("operator", "remove", "oscar")[0] == 0
    assert cli("operator", "remove", "oscar")[0] == 1
    code, listed, _ = cli("operator", "list", "--json")
    assert code == 0 and [o["name"] for o in listed] == ["olga"]
    assert "hash" not in json.dumps(listed) and "argon2" not in json.dumps(listed)
    assert cli("account", "create", "acme", "--credits", "10")[0] == 0
    assert cli("account", "credit", "acme", "5", "--reason", "goodwill, ticket 9")[0] == 0
    hub = HubThread(hub_config(data)).start()
    hubs.append(hub)
    client = _client(hub, opened)
    for password, status in (("first-password", 401), (OPERATOR_PASSWORD, 303)):
        page = client.get("/admin/login")
        answer = client.post(
            "/admin/login", data={"csrf": token(page), "operator": "olga", "password": password}
        )
        assert answer.status_code == status
    page = client.get("/admin/accounts/acme").text
    assert "goodwill, ticket 9" in page and "+5" in page and ">cli<" in page


def _unlabelled(html: str) -> list[str]:
    """The form fields a screen reader could not name: no label for them, no aria-label."""
    page = lxml.html.fromstring(html)
    labelled = {label.get("for") for label in page.iter("label")}
    return [
        field.get("name") or field.tag
        for field in page.iter("input", "select", "textarea", "progress", "meter")
        if field.get("type") != "hidden"
        and field.get("id") not in labelled
        and not field.get("aria-label")
    ]


def test_every_field_of_every_page_has_a_label(make_hub: MakeHub, opened: Opened) -> None:
    hub = make_hub(simulator={"report_delay": 30.0})  # the batch stays in progress
    key = customer(hub, "acme")
    operator(hub)
    shopper = sign_in(hub, opened, "acme")
    upload = shopper.post(
        "/send/file",
        data={"csrf": csrf(shopper)},
        files={"file": ("list.csv", b"to,text\n0821110001,one\n", "text/csv")},
    )
    assert upload.status_code == 303
    sent = httpx.post(
        f"{hub.url}/v1/messages",
        headers={"Authorization": f"Bearer {key}"},
        json={"to": "0821110009", "text": "x"},
    )
    message = sent.json()["id"]
    admin = admin_sign_in(hub, opened)
    pages = [(admin, p.format(message=message)) for p in PAGES if not p.endswith("=X")]
    pages += [
        (shopper, p)
        for p in (
            "/send",
            "/messages",
            upload.headers["location"],
            f"/messages/{message}",
            "/keys",
            "/webhooks",
            "/email",
        )
    ]
    pages += [(_client(hub, opened), p) for p in ("/login", "/admin/login")]
    fields = 0
    for client, path in pages:
        html = client.get(path, follow_redirects=True).text
        assert _unlabelled(html) == [], path
        fields += html.count("<input") + html.count("<progress")
    assert fields > 20  # the check saw forms, progress bars and meters
    batches = admin.get("/admin/batches").text
    assert "<progress" in batches and "list.csv" in batches


def _luminance(colour: str) -> float:
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    digits = colour[1:] if len(colour) == 7 else "".join(d * 2 for d in colour[1:])
    r, g, b = (int(digits[i : i + 2], 16) for i in (0, 2, 4))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def test_the_portals_colours_meet_wcag_aa_contrast() -> None:
    css = (ROOT / "adapters/http/portal/static/portal.css").read_text()
    colours = dict(re.findall(r"--(\w+): (#[0-9a-f]{6}|#[0-9a-f]{3})\b", css))
    assert {"ink", "muted", "accent", "ok", "bad", "wait", "bg", "focus"} <= colours.keys()
    # The page, the customers' header, the operators' (tinted) header, a notice card.
    grounds = [colours["bg"], "#f4f6f8", "#fdf3e1", "#eef8f0"]
    assert all(f"background: {g}" in css for g in grounds[1:])

    def ratio(one: str, other: str) -> float:
        light, dark = sorted((_luminance(one), _luminance(other)), reverse=True)
        return (light + 0.05) / (dark + 0.05)

    for ground in grounds:
        for name in ("ink", "muted", "accent", "ok", "bad", "wait"):
            assert ratio(colours[name], ground) >= 4.5, (name, ground)
        # What is not text needs 3:1 (WCAG 1.4.11): the focus ring, offset onto the
        # ground, and the fields' borders.
        assert ratio(colours["focus"], ground) >= 3, ("focus", ground)
        assert ratio("#767676", ground) >= 3, ("field border", ground)
    assert ":focus-visible { outline: 3px solid var(--focus); outline-offset: 2px; }" in css
    assert "border: 1px solid #767676;" in css
    assert ratio("#fff", colours["accent"]) >= 4.5  # a button's white text on the accent


def test_the_docs_operator_commands_work_as_shipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = (ROOT / "docs" / "portal.md").read_text()
    block = re.search(r"```\n(echo .*?)```", doc, re.S)
    assert block, "docs/portal.md's operator commands"
    cli = hub_cli(tmp_path, monkeypatch, capsys, toml=f'[hub]\ndata_dir = "{tmp_path}/hub"\n')
    assert cli("account", "create", "acme")[0] == 0
    for line in block.group(1).strip().splitlines():
        typed, _, command = line.rpartition("| ")
        monkeypatch.setattr("sys.stdin", io.StringIO(shlex.split(typed)[1] + "\n" if typed else ""))
        argv = shlex.split(command)
        assert argv[0] == "smshub", line
        code, _, err = cli(*argv[1:])
        assert code == 0, (line, err)
    assert cli("operator", "list", "--json")[1] == []  # added, then removed
    assert cli("account", "show", "acme", "--json")[1]["balance"] == "500"
