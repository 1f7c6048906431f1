"""schemas/powerautomate-connector.json, the Power Automate custom connector: valid
Swagger 2.0, its webhook trigger as Power Automate needs it (the callback URL marked
x-ms-notification-url, a DELETE on the subscription's Location), and every route it
calls one the JSON API documents (schemas/openapi.yaml), so the two cannot drift."""

from __future__ import annotations

import json
from typing import Any

from openapi_spec_validator import OpenAPIV2SpecValidator

from adapters.http import openapi

CONNECTOR = openapi.SCHEMAS / "powerautomate-connector.json"


def connector() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(CONNECTOR.read_text(encoding="utf-8"))
    return loaded


def test_the_connector_is_valid_swagger_2_0() -> None:
    spec = connector()
    OpenAPIV2SpecValidator(spec).validate()
    assert spec["swagger"] == "2.0"


def test_the_connector_sends_a_message_and_reads_the_balance() -> None:
    paths = connector()["paths"]
    assert paths["/v1/messages"]["post"]["operationId"] == "SendMessage"
    assert paths["/v1/balance"]["get"]["operationId"] == "GetBalance"


def test_the_trigger_subscribes_with_the_flow_url_and_unsubscribes_on_its_location() -> None:
    spec = connector()
    hooks = spec["paths"]["/v1/hooks"]
    trigger = hooks["post"]
    assert trigger["x-ms-trigger"] == "single"
    assert "Location" in trigger["responses"]["201"]["headers"]
    assert "schema" in hooks["x-ms-notification-content"]
    body = trigger["parameters"][0]["schema"]["$ref"].rsplit("/", 1)[-1]
    fields = spec["definitions"][body]["properties"]
    assert fields["callback_url"]["x-ms-notification-url"] is True
    assert fields["callback_url"]["x-ms-visibility"] == "internal"
    assert "delete" in spec["paths"]["/v1/hooks/{id}"]


def test_every_route_the_connector_calls_is_in_the_json_api() -> None:
    documented = openapi.load()
    for path, item in connector()["paths"].items():
        # The connector's {id} is the API's {endpoint_id}: same route.
        api_path = path.replace("{id}", "{endpoint_id}")
        for method in item:
            if not method.startswith("x-"):
                assert method in documented["paths"][api_path], (method, path)
    sent = connector()["definitions"]["SendMessage"]["properties"]
    accepted = documented["components"]["schemas"]["SendMessage"]["properties"]
    assert set(sent) <= set(accepted)
    subscription = connector()["definitions"]["Subscription"]["properties"]
    assert set(subscription) <= set(documented["components"]["schemas"]["HookRequest"][
        "properties"])
