"""Untrusted XML in: a hardened lxml parse that refuses any DOCTYPE and any element with
more attributes than a request can need, and schema validation whose error report is as
cheap as the validation itself (line and path per violation, at most MAX_VIOLATIONS)."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

XSI = "http://www.w3.org/2001/XMLSchema-instance"
MAX_VIOLATIONS = 100  # an invalid 10,000-message document must not answer megabytes
# No element of any dialect has more than a handful of attributes. Counted in C before
# validation, so a root with thousands of them is refused in microseconds.
MAX_ATTRIBUTES = 32

# A DOCTYPE in the encodings a client may declare; refused before libxml2 sees it.
_DOCTYPE_MARKS = (b"<!DOCTYPE", "<!DOCTYPE".encode("utf-16-le"),
                  "<!DOCTYPE".encode("utf-16-be"))
_HINTS = etree.XPath(
    "boolean(//@*[namespace-uri()=$ns and "
    "(local-name()='schemaLocation' or local-name()='noNamespaceSchemaLocation')])"
)
_CROWDED = etree.XPath(f"(//*[count(@*) > {MAX_ATTRIBUTES}])[1]")
_NAMESPACE = re.compile(r"\{[^{}]*\}")


@dataclass(frozen=True, slots=True)
class Violation:
    reason: str
    line: int | None = None
    path: str = ""


@dataclass
class XmlProblem(Exception):
    """A document refused as a whole; adapters render it in their protocol's format."""

    status: int
    code: str
    message: str
    violations: list[Violation] = field(default_factory=list)

    def __str__(self) -> str:
        return self.message


def _new_parser() -> etree.XMLParser:
    # No DTD loading, no entity expansion, no network; huge_tree=False keeps libxml2's
    # depth and text-node limits on.
    return etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
        huge_tree=False, collect_ids=False, remove_pis=True,
    )


_local = threading.local()  # lxml parsers must not be shared between threads


def parse_untrusted(body: bytes) -> etree._Element:
    """The root of a well-formed document with no DOCTYPE, no schema-location hints."""
    head = body[:4096]
    if any(mark in head for mark in _DOCTYPE_MARKS):
        raise XmlProblem(400, "doctype_forbidden", "documents with a DOCTYPE are refused")
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = _local.parser = _new_parser()
    try:
        root = etree.fromstring(body, parser)
    except etree.XMLSyntaxError as exc:
        line = exc.lineno if isinstance(exc.lineno, int) else None
        raise XmlProblem(400, "invalid_xml", "the body is not well-formed XML",
                         [Violation(str(exc.msg), line)]) from None
    docinfo: etree.DocInfo = root.getroottree().docinfo
    # lxml-stubs lacks DocInfo.doctype; internalDTD alone misses `<!DOCTYPE x SYSTEM ..>`.
    doctype: str = getattr(docinfo, "doctype", "")
    if doctype or docinfo.internalDTD is not None:
        raise XmlProblem(400, "doctype_forbidden", "documents with a DOCTYPE are refused")
    if _HINTS(root, ns=XSI):
        raise XmlProblem(400, "schema_location_forbidden",
                         "xsi:schemaLocation hints are refused; smshub uses its own schemas")
    crowded = _CROWDED(root)
    if isinstance(crowded, list) and crowded:
        element = crowded[0]
        assert isinstance(element, etree._Element)
        raise XmlProblem(400, "too_many_attributes",
                         f"an element has {len(element.attrib)} attributes; the limit is "
                         f"{MAX_ATTRIBUTES}",
                         [Violation("too many attributes", element.sourceline,
                                    readable_path(element))])
    return root


def readable_path(element: etree._Element) -> str:
    """`/submitRequest/message[2]/to`: local names, with a position only where siblings
    share the name (lxml's own paths read `/*/*[3]/*` in a default namespace)."""
    steps: list[str] = []
    node: etree._Element | None = element
    while node is not None:
        name = etree.QName(node).localname
        parent = node.getparent()
        if parent is not None:
            before = sum(1 for _ in node.itersiblings(node.tag, preceding=True))
            if before or next(node.itersiblings(node.tag), None) is not None:
                name = f"{name}[{before + 1}]"
        steps.append(name)
        node = parent
    return "/" + "/".join(reversed(steps))


class SchemaValidator:
    """lxml's XMLSchema decides and explains. Its error log is built in C while it
    validates (the GIL released), so even a hostile invalid document costs no more to
    refuse than a valid one to accept; only the first MAX_VIOLATIONS are rendered."""

    def __init__(self, xsd: Path, describe: Callable[[int], str] | None = None) -> None:
        self.xsd = xsd
        self._xsd_bytes = xsd.read_bytes()
        self._describe = describe or (lambda n: f"the document does not match {xsd.name}: "
                                      f"{n} violation{'s' if n != 1 else ''}")

    def _lxml_schema(self) -> etree.XMLSchema:
        # XMLSchema keeps its error log on the object: one per thread.
        schema: etree.XMLSchema | None = getattr(_local, f"schema_{id(self)}", None)
        if schema is None:
            schema = etree.XMLSchema(etree.fromstring(self._xsd_bytes, _new_parser()))
            setattr(_local, f"schema_{id(self)}", schema)
        return schema

    def validate(self, root: etree._Element) -> None:
        schema = self._lxml_schema()
        if schema.validate(root):
            return
        tree = root.getroottree()
        violations = [_violation(tree, entry)
                      for entry in list(schema.error_log)[:MAX_VIOLATIONS]]  # type: ignore[call-overload]
        raise XmlProblem(400, "invalid_document", self._describe(len(violations)), violations)


def _violation(tree: etree._ElementTree, entry: etree._LogEntry) -> Violation:
    found = tree.xpath(entry.path) if entry.path else []
    path = readable_path(found[0]) if isinstance(found, list) and found and isinstance(
        found[0], etree._Element) else ""
    line = entry.line if isinstance(entry.line, int) and entry.line > 0 else None
    return Violation(_NAMESPACE.sub("", entry.message), line, path)
