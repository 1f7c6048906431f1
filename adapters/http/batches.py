"""`/v1/batches`: a batch created from JSON messages or an uploaded CSV file (text/csv,
or multipart/form-data with a `file` part; read by the FTP drop's parser, every format
it knows), its progress, and its messages' results as JSON pages or one CSV file."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import hashlib
import io
import json
import tempfile
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, replace
from email.parser import BytesParser
from email.policy import HTTP
from itertools import islice
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from adapters.csv import detect
from adapters.csv.decode import UnreadableFile
from adapters.csv.results import REPORT_HEADER, report_cells
from adapters.csv.rows import FileRules, Row
from adapters.http.app import HttpContext, parse_json
from adapters.http.idempotency import HEADER, Held, Keys, lost
from adapters.http.messages import summary
from adapters.http.pages import BadQuery, decode_cursor, encode_cursor, guarded, limit_of
from adapters.http.rest import outcome_json, submission_from_json
from hub.batches import Batch, BatchProgress, BatchState, next_state
from hub.clock import utcnow
from hub.errors import HubError, Rejected
from hub.idempotency import Answer, KeyLost
from hub.ids import new_id
from hub.model import Accepted, Account, Outcome, Refused, Source, Status

CSV_TYPES = frozenset({"text/csv", "application/csv", "text/plain"})
MAX_NAME = 200
RESULTS_PAGE = 1000  # messages read per spool call while a CSV streams


@dataclass(frozen=True, slots=True)
class Upload:
    """A batch as it came: its name, format, content, and the rows read from it."""

    name: str
    format: str
    content: bytes
    rows: list[Row]


def routes(ctx: HttpContext) -> list[BaseRoute]:
    api = BatchApi(ctx)
    return [
        Route("/v1/batches", guarded(ctx, api.create), methods=["POST"]),
        Route("/v1/batches/{batch_id}", guarded(ctx, api.show), methods=["GET"]),
        Route("/v1/batches/{batch_id}/results", guarded(ctx, api.results), methods=["GET"]),
    ]


class BatchApi:
    def __init__(self, ctx: HttpContext) -> None:
        self.ctx = ctx
        self.keys = Keys(ctx)
        self.rules = FileRules(ctx.region, ctx.timezone)

    async def create(self, account: Account, request: Request) -> Response:
        upload = await self._upload(request)
        held = None
        if HEADER in request.headers:
            claimed = await self.keys.claim(account, request, upload.content,
                                            f"{upload.format};{upload.name}")
            if isinstance(claimed, Response):
                return claimed
            held = claimed
        try:
            return await self._run(account, upload, held)
        except KeyLost as exc:  # its hold ran out and a repeat took the key
            return lost(exc)
        except BaseException:
            if held is not None:
                await self.keys.release(held)
            raise

    async def from_file(self, account: Account, name: str, content: bytes) -> dict[str, Any]:
        """A batch from a file uploaded elsewhere (the portal's form): the answer
        POST /v1/batches gives; BadQuery when the file cannot be a batch."""
        response = await self._run(account, await self._csv(_name(name), content), None)
        answer: dict[str, Any] = json.loads(bytes(response.body))
        return answer

    async def _run(self, account: Account, upload: Upload, held: Held | None) -> Response:
        """The batch row, then every row through intake in one call (the key's answer
        kept in its transaction), then the row's counters: the FTP drop's order."""
        batch = Batch(new_id(), account.id, upload.name,
                      hashlib.sha256(upload.content).hexdigest(), upload.format, utcnow(),
                      BatchState.PROCESSING, report_final=True)  # no report file: not FTP
        spool, call = self.ctx.runner.spool, self.ctx.runner.call
        await call(spool.create_batch, batch)
        rows = upload.rows

        def merged(done: Iterable[Outcome]) -> list[Outcome]:
            answers = iter(done)
            return [next(answers) if row.submission is not None
                    else row.refused or Refused("invalid_field", "rejected") for row in rows]

        def respond(outcomes: list[Outcome]) -> Response:
            body = batch_view(_counted(batch, outcomes), None)
            body["results"] = [{"line": row.line, **outcome_json(outcome)}
                               for row, outcome in zip(rows, outcomes, strict=True)]
            return JSONResponse(body, 202)

        def answer(done: list[Outcome]) -> Answer:
            response = respond(merged(done))
            return Answer(response.status_code, bytes(response.body), "application/json")

        ready = [row.submission for row in rows if row.submission is not None]
        seal = None if held is None else held.seal(answer)
        try:
            done = await self.ctx.intake.submit(account, Source.REST, ready,
                                                batch_id=batch.id, seal=seal)
        except BaseException:
            # Nothing of it was committed (one transaction): the batch row says so.
            with contextlib.suppress(HubError):
                await call(spool.update_batch, replace(batch, state=BatchState.FAILED,
                                                       finished_at=utcnow()))
            raise
        outcomes = merged(done)
        await call(spool.update_batch, _counted(batch, outcomes))
        return respond(outcomes)

    async def _upload(self, request: Request) -> Upload:
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        body = await request.body()
        if kind == "application/json":
            return self._json(body)
        if kind in CSV_TYPES:
            name = request.query_params.get("name") or "upload.csv"
            return await self._csv(_name(name), body)
        if kind == "multipart/form-data":
            name, content = _multipart(request.headers["content-type"], body)
            return await self._csv(name, content)
        raise BadQuery("send the batch as application/json, text/csv, or "
                       "multipart/form-data with a 'file' part", "unsupported_media_type", 415)

    def _json(self, body: bytes) -> Upload:
        try:
            parsed = parse_json(body)
        except (ValueError, RecursionError):
            raise BadQuery("the body is not valid JSON", "invalid_json") from None
        items = parsed.get("messages") if isinstance(parsed, dict) else None
        if not isinstance(items, list) or not items:
            raise BadQuery("the body must be {\"messages\": [...]} with at least one message",
                           "invalid_request")
        self._check_size(len(items))
        name = parsed.get("name") if isinstance(parsed, dict) else None
        if name is not None and not isinstance(name, str):
            raise BadQuery("'name' must be a string", "invalid_field", 422)
        rows = [self._json_row(line, item) for line, item in enumerate(items, 1)]
        return Upload(_name(name or "api.json"), "json", body, rows)

    def _json_row(self, line: int, item: Any) -> Row:
        given = item.get("to") if isinstance(item, dict) else None
        given = given if isinstance(given, str) else ""
        try:
            submission = submission_from_json(item, self.ctx.timezone)
        except Rejected as exc:
            return Row(line, given, refused=Refused(exc.code, exc.reason))
        return Row(line, given, submission=replace(submission, batch_line=line))

    async def _csv(self, name: str, content: bytes) -> Upload:
        if not content.strip():
            raise BadQuery("the file is empty", "empty_batch", 422)
        limit = self.ctx.max_messages_per_request
        try:
            kind, rows = await asyncio.to_thread(_read_csv, content, self.rules, limit + 1)
        except (UnreadableFile, csv.Error) as exc:
            raise BadQuery(f"the file cannot be read: {exc}", "unreadable_file", 422) from None
        self._check_size(len(rows))
        if not rows:
            raise BadQuery("the file has no rows", "empty_batch", 422)
        return Upload(name, kind, content, rows)

    def _check_size(self, count: int) -> None:
        limit = self.ctx.max_messages_per_request
        if count > limit:
            raise BadQuery(f"more than {limit} messages in one batch; the limit is {limit}",
                           "too_many_messages", 413)

    async def show(self, account: Account, request: Request) -> Response:
        batch = await self._batch(account, request)
        counts = await self.ctx.runner.call(self.ctx.runner.spool.batch_status_counts,
                                            batch.id)
        return JSONResponse(batch_view(batch, counts))

    async def results(self, account: Account, request: Request) -> Response:
        batch = await self._batch(account, request)
        if _wants_csv(request):
            return StreamingResponse(self._csv_results(batch), media_type="text/csv; "
                                     "charset=utf-8", headers={"Content-Disposition":
                                     f'attachment; filename="{batch.id}.results.csv"'})
        limit = limit_of(request)
        parts = decode_cursor(request, 1)
        found = await self.ctx.runner.call(self.ctx.runner.spool.batch_messages, batch.id,
                                           "" if parts is None else parts[0], limit + 1)
        page = found[:limit]
        cursor = encode_cursor(page[-1].id) if len(found) > limit else None
        return JSONResponse({"batch_id": batch.id, "results": [summary(m) for m in page],
                             "next_cursor": cursor})

    async def _csv_results(self, batch: Batch) -> AsyncIterator[bytes]:
        """The FTP drop's report rows, page by page; UTF-8 with a BOM, as its files."""
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(REPORT_HEADER)
        after = ""
        while True:
            page = await self.ctx.runner.call(self.ctx.runner.spool.batch_messages, batch.id,
                                              after, RESULTS_PAGE)
            writer.writerows(report_cells(m) for m in page)
            chunk = out.getvalue()
            out.seek(0)
            out.truncate()
            yield ("\ufeff" + chunk if not after else chunk).encode()
            if len(page) < RESULTS_PAGE:
                return
            after = page[-1].id

    async def _batch(self, account: Account, request: Request) -> Batch:
        batch_id = request.path_params["batch_id"]
        batch = await self.ctx.runner.call(self.ctx.runner.spool.get_batch, batch_id)
        if batch is None or batch.account_id != account.id:
            raise BadQuery(f"no batch '{batch_id}' in this account", "not_found", 404)
        return batch


def batch_view(batch: Batch, counts: dict[Status, int] | None) -> dict[str, Any]:
    """A batch's progress: rows read, accepted and refused, and its messages by public
    state (`counts` None: just created, every accepted message pending)."""
    progress = BatchProgress(batch, counts or {})
    state = next_state(progress) if counts is not None else batch.state
    if counts is None:
        new = batch.accepted
        messages = {"total": new, "pending": new, "delivered": 0, "failed": 0}
    else:
        messages = {"total": progress.messages, "pending": progress.pending,
                    "delivered": progress.delivered, "failed": progress.failed}
    return {
        "id": batch.id, "name": batch.file_name, "format": batch.format,
        "state": state.value, "received_at": batch.received_at.isoformat(),
        "finished_at": None if batch.finished_at is None else batch.finished_at.isoformat(),
        "rows": batch.rows, "accepted": batch.accepted, "rejected": batch.rejected,
        "messages": messages,
    }


def _counted(batch: Batch, outcomes: list[Outcome]) -> Batch:
    accepted = sum(isinstance(o, Accepted) for o in outcomes)
    return replace(batch, state=BatchState.ACCEPTED, rows=len(outcomes), accepted=accepted,
                   rejected=len(outcomes) - accepted)


def _read_csv(content: bytes, rules: FileRules, limit: int) -> tuple[str, list[Row]]:
    """The FTP drop's reader, on a private copy of the upload (it reads files)."""
    with tempfile.TemporaryDirectory(prefix="smshub-batch-") as folder:
        path = Path(folder) / "upload"
        path.write_bytes(content)
        try:
            source = detect.open_batch(path, rules)
            rows = list(islice(source.rows(), limit))
        except UnreadableFile as exc:  # its words may name the private copy
            raise UnreadableFile(str(exc).replace(str(path), "the file")) from None
    return source.format, [_numbered(row) for row in rows]


def _numbered(row: Row) -> Row:
    """A row whose submission knows its line, as every batch message does."""
    if row.submission is None or row.submission.batch_line is not None:
        return row
    return replace(row, submission=replace(row.submission, batch_line=row.line))


def _multipart(content_type: str, body: bytes) -> tuple[str, bytes]:
    """The `file` part of a multipart/form-data body: its file name and content."""
    head = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1", "replace")
    message = BytesParser(policy=HTTP).parsebytes(head + body)
    if message.is_multipart():
        for part in message.iter_parts():
            if part.get_param("name", header="content-disposition") == "file":
                content = part.get_payload(decode=True)
                name = part.get_filename() or "upload.csv"
                return _name(name), content if isinstance(content, bytes) else b""
    raise BadQuery("a multipart/form-data body needs a 'file' part with the CSV file",
                   "invalid_request")


def _name(name: str) -> str:
    """A batch's name as shown back: the last path part, printable, bounded."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    clean = "".join(c for c in base if c.isprintable())[:MAX_NAME]
    return clean or "upload.csv"


def _wants_csv(request: Request) -> bool:
    chosen = request.query_params.get("format")
    if chosen is not None:
        if chosen not in ("csv", "json"):
            raise BadQuery("'format' must be csv or json")
        return chosen == "csv"
    accept = request.headers.get("accept", "")
    return "text/csv" in accept and "application/json" not in accept

