"""The portal's traffic pages: send a message to pasted numbers or upload a CSV batch
(through intake, as every protocol), recent messages with their event history, batches
with their progress; each id looked up only within the signed-in account."""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from adapters.http.batches import BatchApi, batch_view
from adapters.http.pages import BadQuery
from adapters.http.portal.forms import Form
from adapters.http.portal.web import HEADERS, NotYours, Visitor, Web
from hub import views
from hub.batches import Batch
from hub.model import Message, Outcome, PublicState, Refused, Source, Status, Submission
from hub.ports import MessageFilter

MAX_NUMBERS = 1000  # a small batch typed or pasted; larger ones come as a file
PAGE = 50
_SPLIT = re.compile(r"[\n,;]+")  # not spaces: "082 123 4567" is one number


class Traffic:
    def __init__(self, web: Web) -> None:
        self.web = web
        self.ctx = web.ctx
        self.batches = BatchApi(web.ctx)

    async def send_form(self, visitor: Visitor, request: Request, form: Form) -> Response:
        return self.web.render(request, "send.html", visitor)

    async def send(self, visitor: Visitor, request: Request, form: Form) -> Response:
        numbers = [n.strip() for n in _SPLIT.split(form.get("to")) if n.strip()]
        text, sender = form.get("text"), form.get("from") or None
        problem = ("Enter at least one number." if not numbers else
                   f"At most {MAX_NUMBERS} numbers at once; upload a file for more."
                   if len(numbers) > MAX_NUMBERS else "Enter the message text."
                   if not text.strip() else "")
        if problem:
            return self.web.render(request, "send.html", visitor, 422, error=problem,
                                   to=form.get("to"), text=text)
        # The portal speaks JSON's model: Source.REST, as the JSON API's messages.
        outcomes = await self.ctx.intake.submit(
            visitor.account, Source.REST, [Submission(n, text, sender=sender)
                                           for n in numbers])
        results = [{"to": n, **_outcome(o)} for n, o in zip(numbers, outcomes, strict=True)]
        return self.web.render(request, "sent.html", visitor, results=results)

    async def upload(self, visitor: Visitor, request: Request, form: Form) -> Response:
        name, content = form.files.get("file", ("", b""))
        try:
            answer = await self.batches.from_file(visitor.account, name or "upload.csv",
                                                  content)
        except BadQuery as exc:
            return self.web.render(request, "send.html", visitor, 422,
                                   file_error=str(exc))
        return RedirectResponse(f"/batches/{answer['id']}", 303, headers=HEADERS)

    async def messages(self, visitor: Visitor, request: Request, form: Form) -> Response:
        state = request.query_params.get("state", "")
        statuses = tuple(s for s in Status if s.public.value == state)
        before = request.query_params.get("before") or None
        found = await self.ctx.runner.call(self.ctx.runner.spool.list_messages, MessageFilter(
            account_id=visitor.account.id, statuses=statuses, limit=PAGE + 1,
            before_id=before))
        older = found[PAGE - 1].id if len(found) > PAGE else None
        return self.web.render(request, "messages.html", visitor, state=state,
                               states=[s.value for s in PublicState],
                               messages=[_row(m) for m in found[:PAGE]], older=older)

    async def message(self, visitor: Visitor, request: Request, form: Form) -> Response:
        spool, call = self.ctx.runner.spool, self.ctx.runner.call
        message = await call(spool.get_message, request.path_params["message_id"])
        if message is None or message.account_id != visitor.account.id:
            raise NotYours
        events = await call(spool.events, message.id)
        return self.web.render(request, "message.html", visitor,
                               message=views.message_view(message, events),
                               live=message.status.public is PublicState.PENDING)

    async def batch_list(self, visitor: Visitor, request: Request, form: Form) -> Response:
        spool, call = self.ctx.runner.spool, self.ctx.runner.call
        found = await call(spool.list_batches, visitor.account.id, PAGE)
        # Each with its messages' states, as its own page has them: the list follows
        # them live until every batch on it is final.
        views_ = [batch_view(b, await call(spool.batch_status_counts, b.id)) for b in found]
        return self.web.render(request, "batches.html", visitor, batches=views_,
                               live=any(_moving(v) for v in views_))

    async def batch(self, visitor: Visitor, request: Request, form: Form) -> Response:
        spool, call = self.ctx.runner.spool, self.ctx.runner.call
        batch: Batch | None = await call(spool.get_batch, request.path_params["batch_id"])
        if batch is None or batch.account_id != visitor.account.id:
            raise NotYours
        counts = await call(spool.batch_status_counts, batch.id)
        rows = await call(spool.batch_messages, batch.id, "", 200)
        view = batch_view(batch, counts)
        return self.web.render(request, "batch.html", visitor, batch=view,
                               rows=[_row(m) for m in rows], live=_moving(view))


def _moving(view: dict[str, Any]) -> bool:
    """Whether a batch may still change: rows still read or messages not yet final (a
    batch stopped part-way still has its accepted messages sent)."""
    return view["state"] in ("processing", "accepted") or view["messages"]["pending"] > 0


def _row(message: Message) -> dict[str, Any]:
    return {"id": message.id, "to": message.recipient, "text": message.text,
            "status": message.status.value, "state": message.status.public.value,
            "accepted_at": message.accepted_at}


def _outcome(outcome: Outcome) -> dict[str, Any]:
    if isinstance(outcome, Refused):
        return {"accepted": False, "code": outcome.code, "reason": outcome.reason}
    return {"accepted": True, "id": outcome.message_id, "status": outcome.status.value}
