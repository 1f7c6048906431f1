"""Helpers for the portal's tests: an account with a password, an operator, and clients
signed in through the real sign-in forms (the CSRF token read from the page, as a
browser does)."""

from __future__ import annotations

import re

import httpx

from hub.accounts import hash_password
from hub.clock import utcnow
from tests.hubthread import HubThread

OPERATOR_PASSWORD = "0perator-pass!"
_TOKEN = re.compile(r'name="csrf" value="([^"]+)"')


def customer(hub: HubThread, name: str, password: str = "s3cret-pass!") -> str:
    """Creates the account (sender id ACME) with a password; returns its API key."""
    key = hub.account(name)
    hub.spool.set_password_hash(name, hash_password(password))
    return key


def token(page: httpx.Response) -> str:
    found = _TOKEN.search(page.text)
    assert found, page.text[:500]
    return found.group(1)


def sign_in(hub: HubThread, opened: list[httpx.Client], name: str,
            password: str = "s3cret-pass!") -> httpx.Client:
    """A client signed in as `name`; added to `opened`, which the test closes."""
    client = httpx.Client(base_url=hub.url, timeout=10)
    opened.append(client)
    form = client.get("/login")
    answer = client.post("/login", data={"csrf": token(form), "account": name,
                                         "password": password})
    assert answer.status_code == 303 and answer.headers["location"] == "/messages", \
        answer.text[:500]
    return client


def csrf(client: httpx.Client) -> str:
    return token(client.get("/send"))


def operator(hub: HubThread, name: str = "olga", password: str = OPERATOR_PASSWORD) -> None:
    """An operator of the /admin pages, as `smshub operator add` makes one."""
    hub.spool.add_operator(name, hash_password(password), utcnow())


def admin_sign_in(hub: HubThread, opened: list[httpx.Client], name: str = "olga",
                  password: str = OPERATOR_PASSWORD) -> httpx.Client:
    """A client signed in to /admin as operator `name`; added to `opened`."""
    client = httpx.Client(base_url=hub.url, timeout=10)
    opened.append(client)
    form = client.get("/admin/login")
    answer = client.post("/admin/login", data={"csrf": token(form), "operator": name,
                                               "password": password})
    assert answer.status_code == 303 and answer.headers["location"] == "/admin/accounts", \
        answer.text[:500]
    return client
