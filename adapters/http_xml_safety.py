"""Untrusted XML in: a hardened lxml parse that refuses any DOCTYPE, and schema validation
that is fast when a document is valid and precise (line and path per violation) when not."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import xmlschema
from lxml import etree

XSI = "http://www.w3.org/2001/XMLSchema-instance"
MAX_VIOLATIONS = 100  # an invalid 10,000-message document must not answer megabytes

# A DOCTYPE in the encodings a client may declare; refused before libxml2 sees it.
_DOCTYPE_MARKS = (b"<!DOCTYPE", "<!DOCTYPE".encode("utf-16-le"),
                  "<!DOCTYPE".encode("utf-16-be"))
_HINTS = etree.XPath(
    "boolean(//@*[namespace-uri()=$ns and "
    "(local-name()='schemaLocation' or local-name()='noNamespaceSchemaLocation')])"
)


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
    return root


class SchemaValidator:
    """lxml's XMLSchema decides; xmlschema (offline) explains, only for invalid documents."""

    def __init__(self, xsd: Path, describe: Callable[[int], str] | None = None) -> None:
        self.xsd = xsd
        self._xsd_bytes = xsd.read_bytes()
        # "sandbox": the schema may read files beside itself, nothing else, no network.
        self._precise = xmlschema.XMLSchema(str(xsd.resolve()), allow="sandbox",
                                            base_url=str(xsd.resolve().parent))
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
        violations = self._explain(root) or [
            Violation(e.message, e.line, e.path or "")
            for e in list(schema.error_log)[:MAX_VIOLATIONS]  # type: ignore[call-overload]
        ]
        raise XmlProblem(400, "invalid_document", self._describe(len(violations)), violations)

    def _explain(self, root: etree._Element) -> list[Violation]:
        found: list[Violation] = []
        for error in self._precise.iter_errors(root, use_location_hints=False):
            line = error.sourceline if isinstance(error.sourceline, int) else None
            found.append(Violation(error.reason or error.message, line, error.path or ""))
            if len(found) >= MAX_VIOLATIONS:
                break
        return found
