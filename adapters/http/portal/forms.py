"""Reads the portal's form posts: URL-encoded fields, or multipart/form-data with a file
part (read with the standard library's MIME parser, as the batch upload does)."""

from __future__ import annotations

from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from urllib.parse import parse_qsl

from starlette.requests import Request


@dataclass(frozen=True, slots=True)
class Form:
    fields: dict[str, str] = field(default_factory=dict)
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # name, content

    def get(self, name: str) -> str:
        return self.fields.get(name, "")


async def read_form(request: Request) -> Form:
    kind = request.headers.get("content-type", "")
    body = await request.body()
    if kind.split(";")[0].strip().lower() == "multipart/form-data":
        return _multipart(kind, body)
    try:
        text = body.decode()
    except UnicodeDecodeError:
        return Form()
    return Form(dict(parse_qsl(text, keep_blank_values=True)))


def _multipart(content_type: str, body: bytes) -> Form:
    head = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1", "replace")
    message = BytesParser(policy=HTTP).parsebytes(head + body)
    form = Form()
    if not message.is_multipart():
        return form
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        content = part.get_payload(decode=True)
        data = content if isinstance(content, bytes) else b""
        filename = part.get_filename()
        if filename is not None:
            form.files[name] = (filename, data)
        else:
            form.fields[name] = data.decode("utf-8", "replace")
    return form
