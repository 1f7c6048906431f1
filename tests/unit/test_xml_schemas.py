"""The published XSDs: every root element has an example beside it, and every example is
valid against its schema for both validators the hub uses."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
import xmlschema
from lxml import etree

from adapters.xml.native import Item, submit_document
from hub.model import Accepted, Refused, Status, Submission

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
XSD = SCHEMAS / "smshub-1.xsd"
EXAMPLES = sorted((SCHEMAS / "examples").glob("*.xml"))
XS = "{http://www.w3.org/2001/XMLSchema}"


def root_elements() -> list[str]:
    return [e.get("name", "") for e in etree.parse(str(XSD)).getroot().iter(f"{XS}element")
            if e.getparent() is not None and e.getparent().tag == f"{XS}schema"]  # type: ignore[union-attr]


def test_every_root_element_of_the_schema_has_an_example_named_after_it() -> None:
    missing = set(root_elements()) - {"credentials"} - {p.stem for p in EXAMPLES}
    assert not missing


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_example_is_valid_against_the_schema(example: Path) -> None:
    schema = etree.XMLSchema(etree.parse(str(XSD)))
    tree = etree.parse(str(example))
    assert schema.validate(tree), schema.error_log
    assert etree.QName(tree.getroot()).localname == example.stem
    xmlschema.XMLSchema(str(XSD)).validate(str(example))


def test_the_submit_answer_written_as_text_is_valid_and_escapes_client_values() -> None:
    nasty = 'a"b<c>&d\'e'
    items = [Item(1, "0821234567", nasty, Submission("0821234567", "hi")),
             Item(2, f"<{nasty}>", None, Refused("invalid_number", f"'<{nasty}>' is bad"))]
    outcomes = [Accepted("01JD0000000000000000000000", Status.ACCEPTED, 1, Decimal("0.25")),
                items[1].submission]
    body = submit_document(items, outcomes)  # type: ignore[arg-type]
    schema = etree.XMLSchema(etree.parse(str(XSD)))
    root = etree.fromstring(body)
    schema.assertValid(root)
    accepted, rejected = list(root)
    assert accepted.get("clientRef") == nasty and accepted.get("cost") == "0.25"
    assert rejected.get("to") == f"<{nasty}>" and rejected.text == f"'<{nasty}>' is bad"
    assert (root.get("accepted"), root.get("rejected")) == ("1", "1")
