"""schemas/openapi.yaml against the real hub: it is valid OpenAPI 3.1, it lists exactly the
routes the hub mounts under /v1/, it is served at /openapi.json and /docs/api without a
key, and every route answers as it says (schemathesis: no 5xx, every status and body as
documented), on a real server driven over HTTP."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from openapi_spec_validator import OpenAPIV31SpecValidator
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.applications import Starlette
from starlette.routing import BaseRoute, Mount, Route

from adapters.http import openapi
from hub.clock import utcnow
from tests.hubthread import HubThread

MakeHub = Callable[..., HubThread]
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance]
# Examples per operation: enough to reach each answer, few enough for ~a minute in all.
EXAMPLES = 8
SEEDED_EXAMPLES = 4


@pytest.fixture
def hub(make_hub: MakeHub) -> HubThread:
    # Webhook endpoints may point at this machine (the seeded one does); deliveries wait.
    return make_hub(webhooks={"enabled": False, "allow_networks": ["127.0.0.0/8"]})


@pytest.fixture
def key(hub: HubThread) -> str:
    return hub.account("acme", credits="100000", price="0.25", sender_ids=("ACME",))


@pytest.fixture
def client(hub: HubThread, key: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=hub.url, headers={"Authorization": f"Bearer {key}"},
                      timeout=10) as c:
        yield c


def test_the_spec_is_valid_openapi_3_1() -> None:
    spec = openapi.load()
    OpenAPIV31SpecValidator(spec).validate()
    assert spec["openapi"].startswith("3.1")
    assert "$ref" not in spec["components"]["schemas"]["WebhookEvent"]


def test_every_route_the_hub_mounts_under_v1_is_in_the_spec_and_no_other(
    hub: HubThread,
) -> None:
    mounted = {(path, method.lower()) for path, methods in _routes(hub)
               if path.startswith("/v1/") for method in methods if method != "HEAD"}
    spec = openapi.load()
    documented = {(path, method) for path, item in spec["paths"].items()
                  for method in item if method != "parameters"}
    assert mounted == documented


def test_the_spec_and_its_page_are_served_without_a_key(hub: HubThread) -> None:
    with httpx.Client(base_url=hub.url, timeout=10) as anonymous:
        served = anonymous.get("/openapi.json")
        page = anonymous.get("/docs/api")
    assert served.status_code == 200 and served.headers["content-type"] == "application/json"
    assert served.json() == openapi.load()
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    # Nothing fetched from elsewhere: the hub runs without internet.
    assert "<script" not in html and " src=" not in html and "<link" not in html
    for item in openapi.load()["paths"].values():  # every operation has its section
        for method, operation in item.items():
            if method != "parameters":
                assert f"<section class=op id='{operation['operationId']}'>" in html
    assert "idempotency_key_reused" in html and "Idempotency-Key" in html


@pytest.mark.timeout(300)  # about 30 s alone; room for a loaded machine
def test_every_route_answers_as_the_spec_says(hub: HubThread, key: str,
                                              client: httpx.Client) -> None:
    seeded = _seed(client)
    schema = schemathesis.openapi.from_url(f"{hub.url}/openapi.json")
    caller = Caller(hub.url, {"Authorization": f"Bearer {key}"})
    # DELETEs last, so that the seeded resources are there for the others first.
    operations = sorted((result.ok() for result in schema.get_all_operations()),
                        key=lambda op: op.method.upper() == "DELETE")
    with caller.session:
        for operation in operations:
            names = {p.name for p in operation.path_parameters}
            known = {name: seeded[name] for name in names if name in seeded}
            strategies = [operation.as_strategy()]
            if known:  # the seeded resources' own ids too, to reach their 2xx answers
                strategies.append(operation.as_strategy(path_parameters=known))
            if operation.definition.raw.get("operationId") in WORKING_BODIES:
                strategies.append(operation.as_strategy(
                    body=WORKING_BODIES[operation.definition.raw["operationId"]]))
            strategies += schema.get_strategies_from_examples(operation)
            for strategy in strategies:
                caller.run(strategy, SEEDED_EXAMPLES if known else EXAMPLES)
    # The answers a working account never gets: a wrong key (401) and no credit (402).
    stranger = Caller(hub.url, {"Authorization": "Bearer not-a-key"})
    broke = Caller(hub.url, {"Authorization": "Bearer " + hub.account(
        "broke", credits="0", price="0.25", sender_ids=())})
    with stranger.session, broke.session:
        for operation in operations:
            stranger.run(operation.as_strategy(), 2)
        send = schema.find_operation_by_id("sendMessages")
        broke.run(send.as_strategy(body={"to": "0821234567", "text": "hi"}), 2)
    failures = caller.failures + stranger.failures + broke.failures
    assert not failures, "\n\n".join(failures[:10])
    assert stranger.statuses == {401} and broke.statuses == {402}


# Bodies the generator is unlikely to hit that reach a 201: an endpoint on this machine
# (allowed in the test's [webhooks] allow_networks; no name resolves here).
WORKING_BODIES = {"addWebhook": {"url": "http://127.0.0.1:9/hook"},
                  "subscribeHook": {"callback_url": "http://127.0.0.1:9/flow"}}


class Caller:
    """Sends each generated case and collects every answer that breaks the spec. Each
    Idempotency-Key is made unique (generated keys collide, and the 422 of a reused key
    would hide the route's other answers); every third such POST is sent twice, and the
    replay must be the same answer and conform too."""

    def __init__(self, base_url: str, auth: dict[str, str]) -> None:
        self.base_url = base_url
        self.auth = auth
        self.session = requests.Session()
        self.failures: list[str] = []
        self.statuses: set[int] = set()
        self.sent = 0

    def run(self, strategy: st.SearchStrategy[Any], examples: int) -> None:
        @settings(max_examples=examples, derandomize=True, database=None, deadline=None,
                  phases=[Phase.explicit, Phase.generate],
                  suppress_health_check=list(HealthCheck))
        @given(case=strategy)
        def check(case: Any) -> None:
            self.sent += 1
            key = (case.headers or {}).get("Idempotency-Key")
            if key is not None:
                case.headers["Idempotency-Key"] = f"{key[:200]}.{self.sent}"
            first = self.call(case)
            if key is not None and self.sent % 3 == 0 and first is not None:
                again = self.call(case)
                # A body refused before its key is read (unreadable, too many rows) did
                # nothing: the repeat is refused the same way, not replayed.
                replayed = again is not None and again.headers.get(
                    "idempotent-replayed") == ["true"]
                if again is not None and first.status_code < 500 and (
                        again.status_code != first.status_code
                        or (first.status_code < 300 and not replayed)):
                    self.failures.append(f"{case.operation.label}: replay answered "
                                         f"{again.status_code}, first {first.status_code}")

        check()

    def call(self, case: Any) -> Any:
        response = case.call(base_url=self.base_url, session=self.session,
                             headers=self.auth, timeout=10)
        try:
            case.validate_response(response, checks=CHECKS, headers=self.auth)
        except (AssertionError, BaseExceptionGroup) as exc:  # every operation's faults
            self.failures.append(f"{case.operation.label}: {exc}")
            return None
        self.statuses.add(response.status_code)
        return response


def _seed(client: httpx.Client) -> dict[str, str]:
    """A message that can still be cancelled, a batch, an opt-out and a webhook: the ids
    the seeded examples use."""
    later = (utcnow() + timedelta(hours=2)).isoformat()
    message = client.post("/v1/messages", json={"to": "0821234567", "text": "hi",
                                                "send_at": later})
    batch = client.post("/v1/batches", json={"messages": [{"to": "0821234568", "text": "a"}]})
    optout = client.post("/v1/optouts", json={"number": "0821234569"})
    hook = client.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/hook"})
    for answer in (message, batch, optout, hook):
        assert answer.status_code in (201, 202), answer.text
    return {"message_id": message.json()["id"], "batch_id": batch.json()["id"],
            "number": optout.json()["number"], "endpoint_id": hook.json()["id"]}


def _routes(hub: HubThread) -> list[tuple[str, set[str]]]:
    """Every route's full path and methods in the Starlette app inside the served
    middleware, mounted sub-apps included."""
    server = hub.hub._by_name["http"]  # the running listener (Hub names no accessor)
    app: Any = getattr(server, "app", None)
    while not isinstance(app, Starlette):
        app = app.app
    return list(_walk(app.routes, ""))


def _walk(routes: list[BaseRoute], prefix: str) -> Iterator[tuple[str, set[str]]]:
    for route in routes:
        if isinstance(route, Mount):
            yield from _walk(route.routes, prefix + route.path)
        elif isinstance(route, Route):
            yield prefix + route.path, set(route.methods or ())
