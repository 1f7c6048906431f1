"""A dialect request's parameters as its clients send them: the query string, then a
form-encoded body on POST; names as written (each dialect decides about case), values
as the bytes sent, for the dialect to decode in its own charset."""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from starlette.requests import Request

FORM = "application/x-www-form-urlencoded"
MAX_FIELDS = 1000  # parameters in one request; far more than any dialect has


class BadParameters(ValueError):
    """The query or body cannot be read as parameters (too many of them)."""


class Params:
    """The pairs as sent, looked up by name: a dialect asks for a score of names per
    request (each with its aliases), so the first value of each name is indexed once,
    and once more by lower-cased name when a lookup folds case."""

    __slots__ = ("_first", "_folded", "pairs")

    def __init__(self, pairs: tuple[tuple[str, bytes], ...]) -> None:
        self.pairs = pairs
        first: dict[str, bytes] = {}
        for key, value in pairs:
            first.setdefault(key, value)
        self._first = first
        self._folded: dict[str, bytes] | None = None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Params) and other.pairs == self.pairs

    def __hash__(self) -> int:
        return hash(self.pairs)

    def __repr__(self) -> str:
        return f"Params({self.pairs!r})"

    def raw(self, *names: str, fold: bool = False) -> bytes | None:
        """The first value of the first of `names` present; `fold` compares without case
        (ASP's query keys are case-insensitive)."""
        if fold:
            index = self._folded
            if index is None:
                index = {}
                for key, value in self.pairs:
                    index.setdefault(key.lower(), value)
                self._folded = index
        else:
            index = self._first
        for name in names:
            found = index.get(name)
            if found is not None:
                return found
        return None

    def has_any(self, names: frozenset[str]) -> bool:
        """Whether any of `names` is given (as written): a dialect skips the fields
        most requests leave out with one set operation."""
        return not names.isdisjoint(self._first)

    def text(self, *names: str, fold: bool = False) -> str | None:
        value = self.raw(*names, fold=fold)
        return None if value is None else decode(value)


def decode(value: bytes) -> str:
    """UTF-8, as today's clients send; else the Latin-1 older clients wrote."""
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def _pairs(data: bytes) -> list[tuple[str, bytes]]:
    """What urllib's parse_qsl gives (keep_blank_values, latin-1 both ways, so every
    decoded byte stays as it was sent), read from the bytes directly: parse_qsl's str
    round trip cost a sendsms request more than its intake."""
    if data.count(b"&") >= MAX_FIELDS:
        raise BadParameters(f"more than {MAX_FIELDS} parameters")
    # A "+" is a space wherever it stands and neither "&" nor "=" can come of it, so one
    # replace serves every name and value, and a query without "%" escapes nothing: the
    # per-field tests cost a sendsms request more than the unescaping itself.
    if b"+" in data:
        data = data.replace(b"+", b" ")
    escaped = b"%" in data
    pairs: list[tuple[str, bytes]] = []
    for field in data.split(b"&"):
        if not field:
            continue
        name, _, value = field.partition(b"=")
        if escaped:
            if b"%" in name:
                name = unquote_to_bytes(name)
            if b"%" in value:
                value = unquote_to_bytes(value)
        pairs.append((name.decode("latin-1"), value))
    return pairs


async def read(request: Request) -> Params:
    """The query's parameters, then a POST's form body's (one without a content type
    too: `curl -d` and old clients send none); other bodies are not parameters."""
    return parsed(request, await request.body() if has_form(request) else b"")


def parsed(request: Request, body: bytes) -> Params:
    """`read` of a request whose whole `body` is at hand."""
    pairs = _pairs(request.scope.get("query_string", b""))
    if has_form(request):
        pairs += _pairs(body)
    return Params(tuple(pairs))


def has_form(request: Request) -> bool:
    """Whether the request's body holds parameters: a form POST, or one with no type."""
    return request.method == "POST" and media_type(request) in (FORM, "")
