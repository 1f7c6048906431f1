"""The published XSDs: every root element has an example beside it, and every example is
valid against its schema for both validators the hub uses."""

from __future__ import annotations

from pathlib import Path

import pytest
import xmlschema
from lxml import etree

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
