"""The browsable page of the JSON API (/docs/api), rendered on the server from the OpenAPI
spec: the routes grouped by tag with their parameters, bodies and answers, then the
schemas they name. Plain HTML and CSS, no script: the hub runs without internet."""

from __future__ import annotations

import re
from html import escape
from typing import Any

METHODS = ("get", "post", "put", "patch", "delete")
_STYLE = """
body{font:15px/1.5 system-ui,sans-serif;max-width:64rem;margin:2rem auto;padding:0 1rem;
color:#1d232a}h2{border-bottom:2px solid #ccd;margin-top:2.5rem}h3{margin-bottom:.3rem}
section.op{border:1px solid #dde;border-radius:6px;padding:.2rem 1rem 1rem;margin:1rem 0}
.m{display:inline-block;min-width:4.2rem;text-align:center;border-radius:4px;color:#fff;
font:bold 13px monospace;padding:2px 6px;margin-right:.4rem}.get{background:#2b6cb0}
.post{background:#2f855a}.delete{background:#c53030}.put,.patch{background:#b7791f}
table{border-collapse:collapse;width:100%;margin:.4rem 0}th,td{text-align:left;
vertical-align:top;border-bottom:1px solid #eef;padding:.25rem .5rem}th{background:#f5f6fa}
code{background:#f3f4f7;padding:0 3px;border-radius:3px}nav li{margin:.1rem 0}
.d{white-space:pre-line}.req{color:#c53030}
"""


def render(spec: dict[str, Any]) -> str:
    info = spec.get("info", {})
    title = escape(info.get("title", "API"))
    parts = [f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{title}</title>",
             "<meta name=viewport content='width=device-width,initial-scale=1'>",
             f"<style>{_STYLE}</style></head><body><h1>{title}</h1>",
             f"<p class=d>{_text(info.get('description', ''))}</p>",
             "<p>The machine-readable description: <a href='/openapi.json'>/openapi.json"
             "</a> (OpenAPI 3.1).</p>"]
    groups = _by_tag(spec)
    parts.append(_contents(spec, groups))
    for tag, ops in groups.items():
        parts.append(f"<h2 id='tag-{escape(tag)}'>{escape(tag)}</h2>")
        parts.append(f"<p>{_text(_tag_description(spec, tag))}</p>")
        parts += [_operation(method, path, op) for method, path, op in ops]
    for name, item in spec.get("webhooks", {}).items():
        parts.append(f"<h2 id='webhook-{escape(name)}'>Webhook: {escape(name)}</h2>")
        parts += [_operation(method, "(your endpoint)", op) for method, op in item.items()
                  if method in METHODS]
    parts.append("<h2 id=schemas>Schemas</h2>")
    for name, schema in spec.get("components", {}).get("schemas", {}).items():
        parts.append(_schema_section(name, schema))
    parts.append("</body></html>")
    return "\n".join(parts)


def _by_tag(spec: dict[str, Any]) -> dict[str, list[tuple[str, str, dict[str, Any]]]]:
    groups: dict[str, list[tuple[str, str, dict[str, Any]]]] = {
        t["name"]: [] for t in spec.get("tags", [])}
    for path, item in spec.get("paths", {}).items():
        shared = item.get("parameters", [])
        for method in METHODS:
            if method in item:
                op = _resolved(spec, {**item[method], "parameters": [
                    *shared, *item[method].get("parameters", [])]})
                for tag in op.get("tags", ["other"]):
                    groups.setdefault(tag, []).append((method, path, op))
    return groups


def _resolved(spec: dict[str, Any], op: dict[str, Any]) -> dict[str, Any]:
    """The operation with its shared parameters and answers (components) written out."""
    return {**op, "parameters": [_deref(spec, p) for p in op["parameters"]],
            "responses": {status: _deref(spec, answer)
                          for status, answer in op.get("responses", {}).items()}}


def _deref(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#/components/"):
        return node
    found: Any = spec
    for part in ref[2:].split("/"):
        found = found[part]
    return found if isinstance(found, dict) else node


def _tag_description(spec: dict[str, Any], tag: str) -> str:
    return next((t.get("description", "") for t in spec.get("tags", [])
                 if t["name"] == tag), "")


def _contents(spec: dict[str, Any],
              groups: dict[str, list[tuple[str, str, dict[str, Any]]]]) -> str:
    items = []
    for tag, ops in groups.items():
        links = "".join(f"<li><a href='#{_anchor(method, path, op)}'><span class='m "
                        f"{method}'>{method.upper()}</span><code>{escape(path)}</code></a> "
                        f"{escape(op.get('summary', ''))}</li>" for method, path, op in ops)
        items.append(f"<li><a href='#tag-{escape(tag)}'>{escape(tag)}</a><ul>{links}</ul></li>")
    hooks = "".join(f"<li><a href='#webhook-{escape(n)}'>Webhook: {escape(n)}</a></li>"
                    for n in spec.get("webhooks", {}))
    return f"<nav><ul>{''.join(items)}{hooks}<li><a href=#schemas>Schemas</a></li></ul></nav>"


def _anchor(method: str, path: str, op: dict[str, Any]) -> str:
    return escape(op.get("operationId") or f"{method}-{path}")


def _operation(method: str, path: str, op: dict[str, Any]) -> str:
    out = [f"<section class=op id='{_anchor(method, path, op)}'><h3><span class='m {method}'>"
           f"{method.upper()}</span><code>{escape(path)}</code></h3>",
           f"<p><b>{escape(op.get('summary', ''))}</b></p>"]
    if op.get("description"):
        out.append(f"<p class=d>{_text(op['description'])}</p>")
    if op.get("parameters"):
        rows = "".join(_parameter(p) for p in op["parameters"])
        out.append("<h4>Parameters</h4><table><tr><th>Name</th><th>In</th><th>Type</th>"
                   f"<th>Description</th></tr>{rows}</table>")
    body = op.get("requestBody")
    if body:
        required = " (required)" if body.get("required") else " (optional)"
        out.append(f"<h4>Request body{required}</h4>")
        if body.get("description"):
            out.append(f"<p>{_text(body['description'])}</p>")
        out.append(_contents_table(body.get("content", {})))
    out.append("<h4>Answers</h4><table><tr><th>Status</th><th>Description</th>"
               "<th>Body</th></tr>")
    for status, answer in op.get("responses", {}).items():
        media = _contents_table(answer.get("content", {}), compact=True)
        out.append(f"<tr><td><b>{escape(status)}</b></td><td class=d>"
                   f"{_text(answer.get('description', ''))}</td><td>{media}</td></tr>")
    out.append("</table></section>")
    return "\n".join(out)


def _parameter(p: dict[str, Any]) -> str:
    required = " <span class=req>*</span>" if p.get("required") else ""
    return (f"<tr><td><code>{escape(p['name'])}</code>{required}</td><td>{escape(p['in'])}"
            f"</td><td>{_type(p.get('schema', {}))}</td><td>"
            f"{_text(p.get('description', ''))}</td></tr>")


def _contents_table(content: dict[str, Any], compact: bool = False) -> str:
    rows = [f"<code>{escape(media)}</code>: {_type(item.get('schema', {}))}"
            for media, item in content.items()]
    if compact:
        return "<br>".join(rows)
    return "<ul>" + "".join(f"<li>{row}</li>" for row in rows) + "</ul>"


def _schema_section(name: str, schema: dict[str, Any]) -> str:
    out = [f"<h3 id='schema-{escape(name)}'>{escape(name)}</h3>"]
    if schema.get("description"):
        out.append(f"<p>{_text(schema['description'])}</p>")
    for part in [schema, *schema.get("allOf", [])]:
        if "$ref" in part:
            out.append(f"<p>Everything in {_link(part['$ref'])}, and:</p>")
        elif part.get("properties"):
            out.append(_properties(part))
    if "properties" not in schema and "allOf" not in schema:
        out.append(f"<p>{_type(schema)}</p>")
    # A JSON Schema's own definitions (the webhook event's message, inbound ...).
    out += [_schema_section(name, inner) for name, inner in schema.get("$defs", {}).items()]
    return "\n".join(out)


def _properties(schema: dict[str, Any]) -> str:
    required = set(schema.get("required", []))
    rows = "".join(
        f"<tr><td><code>{escape(name)}</code>"
        f"{' <span class=req>*</span>' if name in required else ''}</td>"
        f"<td>{_type(prop)}</td><td>{_text(prop.get('description', ''))}</td></tr>"
        for name, prop in schema["properties"].items())
    return f"<table><tr><th>Field</th><th>Type</th><th>Description</th></tr>{rows}</table>"


def _type(schema: Any) -> str:
    """A schema in a few words, with links to the named schemas it uses."""
    if not isinstance(schema, dict):
        return ""
    if "$ref" in schema:
        return _link(schema["$ref"])
    for word, key in (("one of", "oneOf"), ("any of", "anyOf"), ("all of", "allOf")):
        if key in schema:
            return f"{word} (" + " | ".join(_type(s) for s in schema[key]) + ")"
    if "const" in schema:
        return f"<code>{escape(str(schema['const']).lower())}</code>"
    if "enum" in schema:
        return "one of " + ", ".join(f"<code>{escape(str(v))}</code>" for v in schema["enum"])
    kind = schema.get("type", "any")
    kinds = kind if isinstance(kind, list) else [kind]
    words = []
    for k in kinds:
        if k == "array":
            words.append("array of " + _type(schema.get("items", {})))
        elif k == "object" and schema.get("properties"):
            words.append("object {" + ", ".join(escape(p) for p in schema["properties"]) + "}")
        else:
            words.append(escape(str(k)) + (f" ({escape(schema['format'])})"
                                           if k == "string" and "format" in schema else ""))
    return " or ".join(words)


def _link(ref: str) -> str:
    name = ref.rsplit("/", 1)[-1]
    kind = "schema" if "/schemas/" in ref else "component"
    return f"<a href='#{kind}-{escape(name)}'>{escape(name)}</a>"


def _text(text: str) -> str:
    """Escaped text with the spec's `code` spans kept as code."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", escape(text.strip()))
