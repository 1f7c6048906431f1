"""The XML API's `deliveryReport` document (schemas/smshub-1.xsd), pushed to an XML
customer's URL: one `report` per document, built from the facts the spool fixed when
the message's status changed."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from adapters.xml.native import document, element

# The schema's ErrorCode: a lower-case token. Carriers' own codes are made to fit.
_NOT_TOKEN = re.compile(r"[^a-z0-9_]+")


def delivery_report(facts: Mapping[str, Any]) -> bytes:
    root = element("deliveryReport")
    attrib = {"id": facts["id"], "to": facts["to"], "status": facts["status"],
              "state": facts["state"], "at": facts["at"]}
    if facts.get("client_ref") is not None:
        attrib["clientRef"] = facts["client_ref"]
    report = element("report", attrib, parent=root)
    error = facts.get("error")
    if error:
        element("error", {"code": error_code(error["code"])}, error["message"],
                parent=report)
    return document(root)


def error_code(code: str) -> str:
    token = _NOT_TOKEN.sub("_", code.lower()).strip("_")
    return token if token[:1].isalpha() else f"error_{token}".rstrip("_")
