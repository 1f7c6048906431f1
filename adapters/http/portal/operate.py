"""The operators' pages: accounts and their credit (added with a reason, into the
ledger), carriers and their binds (the figures of /metrics), the queue's last hour as a
chart, batches in progress, and one message's audit trail found by its id."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from adapters.http.batches import batch_view
from adapters.http.portal.admin import AdminWeb, Staff
from adapters.http.portal.forms import Form
from adapters.http.portal.web import HEADERS, NotYours
from hub import views
from hub.clock import utcnow
from hub.errors import Conflict, Rejected
from hub.model import Account
from hub.operators import depth_by_minute
from hub.ports import MessageFilter

MAX_CREDIT = Decimal(10_000_000)  # a typing slip, not a purchase
LEDGER = 50
RECENT = 20
HOUR = 60  # minutes charted
CHART_HEIGHT = 100


class Operate:
    def __init__(self, admin: AdminWeb) -> None:
        self.admin = admin
        self.ctx = admin.ctx

    async def accounts(self, staff: Staff, request: Request, form: Form) -> Response:
        found = await self.ctx.runner.call(self.ctx.runner.spool.list_accounts)
        return self.admin.render(
            request, "accounts.html", staff, accounts=[_account(a) for a in found]
        )

    async def account(
        self, staff: Staff, request: Request, form: Form, status: int = 200, **shown: Any
    ) -> Response:
        spool, call = self.ctx.runner.spool, self.ctx.runner.call
        account = await call(spool.get_account, request.path_params["name"])
        ledger = await call(spool.credit_changes, account.id, LEDGER)
        recent = await call(spool.list_messages, MessageFilter(account_id=account.id, limit=RECENT))
        return self.admin.render(
            request,
            "account.html",
            staff,
            status,
            account=_account(account),
            ledger=[
                {
                    "at": c.at,
                    "amount": _signed(c.amount),
                    "balance": views.money(c.balance),
                    "reason": c.reason,
                    "actor": c.actor,
                }
                for c in ledger
            ],
            messages=[
                {
                    "id": m.id,
                    "to": m.recipient,
                    "status": m.status.value,
                    "state": m.status.public.value,
                    "accepted_at": m.accepted_at,
                }
                for m in recent
            ],
            **shown,
        )

    async def add_credit(self, staff: Staff, request: Request, form: Form) -> Response:
        name, reason = request.path_params["name"], form.get("reason").strip()
        amount, problem = _amount(form.get("amount"))
        if not problem and not reason:
            problem = "Say why: the reason is kept in the ledger."
        if not problem:
            try:
                await self.ctx.runner.call(
                    self.ctx.runner.spool.credit_account,
                    name,
                    amount,
                    reason[:500],
                    f"operator {staff.operator.name}",
                    utcnow(),
                )
            except (Rejected, Conflict) as exc:
                problem = exc.reason if isinstance(exc, Rejected) else str(exc)
        if problem:
            return await self.account(
                staff, request, form, 422, error=problem, amount=form.get("amount"), reason=reason
            )
        return RedirectResponse(f"/admin/accounts/{quote(name, safe='')}", 303, headers=HEADERS)

    async def carriers(self, staff: Staff, request: Request, form: Form) -> Response:
        metrics = self.ctx.metrics
        figures = metrics.carrier_figures() if metrics.carrier_figures else {}
        totals = await self.ctx.runner.call(self.ctx.runner.spool.totals, utcnow())
        errors: dict[str, dict[str, int]] = {}
        for key, count in metrics.carrier_errors.items():
            carrier, _, code = key.partition("|")
            errors.setdefault(carrier, {})[code] = count
        now = utcnow()
        nodes = [
            {
                "name": r.info.name,
                "role": r.info.role,
                "host": r.info.host,
                "pid": r.info.pid,
                "leased": r.messages_leased,
                "ago": round((now - r.last_seen).total_seconds()),
            }
            for r in await self.ctx.runner.call(self.ctx.runner.spool.list_nodes)
        ]
        return self.admin.render(
            request,
            "carriers.html",
            staff,
            nodes=nodes,
            depth=totals.due,
            rate=round(metrics.dispatch_rate(), 2),
            runs=metrics.carrier_figures is not None,
            carriers=[
                _carrier(name, values, errors.get(name, {}))
                for name, values in sorted(figures.items())
            ],
        )

    async def queue(self, staff: Staff, request: Request, form: Form) -> Response:
        spool, call = self.ctx.runner.spool, self.ctx.runner.call
        now = utcnow()
        first = now.replace(second=0, microsecond=0) - timedelta(minutes=HOUR - 1)
        starts = [first + timedelta(minutes=k) for k in range(HOUR)]
        minutes = await call(spool.queue_minutes, first, now)
        totals = await call(spool.totals, now)
        depths = depth_by_minute(minutes, starts, totals.due)
        by_start = {m.start: m for m in minutes}
        sent = [by_start[s].submitted if s in by_start else 0 for s in starts]
        entered = [by_start[s].entered if s in by_start else 0 for s in starts]
        rows = [
            {"start": s, "depth": d, "submitted": n, "entered": e}
            for s, d, n, e in zip(starts, depths, sent, entered, strict=True)
        ]
        return self.admin.render(
            request,
            "queue.html",
            staff,
            rows=rows,
            depth=totals.due,
            submitted=sum(sent),
            depth_chart=_chart(depths),
            sent_chart=_chart(sent),
            height=CHART_HEIGHT,
        )

    async def batches(self, staff: Staff, request: Request, form: Form) -> Response:
        spool, call = self.ctx.runner.spool, self.ctx.runner.call
        since = utcnow() - timedelta(hours=1)
        # Those still open, and those that ended within the hour: one watched to its end
        # stays on the page.
        found = {b.id: b for b in (await call(spool.open_batches))[-100:]}
        found.update(
            {
                b.id: b
                for b in await call(spool.list_batches, None, 100)
                if b.finished_at is not None and b.finished_at >= since
            }
        )
        names = {a.id: a.name for a in await call(spool.list_accounts)}
        shown = []
        for batch in sorted(found.values(), key=lambda b: (b.received_at, b.id), reverse=True):
            view = batch_view(batch, await call(spool.batch_status_counts, batch.id))
            shown.append(
                {
                    **view,
                    "account": names.get(batch.account_id, "?"),
                    "settled": view["messages"]["delivered"] + view["messages"]["failed"],
                }
            )
        return self.admin.render(
            request,
            "batches.html",
            staff,
            batches=shown,
            live=any(b["state"] != "final" for b in shown),
        )

    async def find_message(self, staff: Staff, request: Request, form: Form) -> Response:
        wanted = request.query_params.get("id", "").strip().upper()
        if wanted:
            return RedirectResponse(f"/admin/messages/{wanted}", 303, headers=HEADERS)
        return self.admin.render(request, "find.html", staff)

    async def message(self, staff: Staff, request: Request, form: Form) -> Response:
        spool, call = self.ctx.runner.spool, self.ctx.runner.call
        message = await call(spool.get_message, request.path_params["message_id"])
        if message is None:
            raise NotYours
        events = await call(spool.events, message.id)
        account = await call(spool.get_account_by_id, message.account_id)
        return self.admin.render(
            request,
            "message.html",
            staff,
            account=account.name,
            message=views.message_view(message, events),
            live=not message.status.final,
        )


def _account(account: Account) -> dict[str, Any]:
    state = "deleted" if account.deleted_at else "enabled" if account.enabled else "disabled"
    return {
        "name": account.name,
        "balance": views.money(account.balance),
        "price": views.money(account.price_per_segment),
        "state": state,
        "sender_ids": account.sender_ids,
        "created_at": account.created_at,
        "has_password": account.has_password,
    }


def _amount(text: str) -> tuple[Decimal, str]:
    """The credit to add (negative: to take), or why it cannot be."""
    try:
        amount = Decimal(text.strip().replace(" ", ""))
    except InvalidOperation:
        return Decimal(0), "Enter an amount, such as 500 or -20.5."
    if not amount.is_finite() or amount == 0 or abs(amount) > MAX_CREDIT:
        return Decimal(0), f"Enter an amount other than 0, at most {MAX_CREDIT:,} either way."
    if amount != amount.quantize(Decimal("0.0001")):
        return Decimal(0), "At most 4 decimal places."
    return amount, ""


def _signed(amount: Decimal) -> str:
    return ("+" if amount > 0 else "") + views.money(amount)


def _carrier(name: str, values: Mapping[str, float], errors: dict[str, int]) -> dict[str, Any]:
    binds, up = int(values.get("binds_configured", 0)), int(values.get("binds_up", 0))
    window = int(values.get("window", 0))
    flying = int(values.get("outstanding", 0))
    capacity = window * up
    status_errors = {
        k.removeprefix("status_"): int(v) for k, v in values.items() if k.startswith("status_")
    }
    return {
        "name": name,
        "up": bool(values.get("up")),
        "binds": binds,
        "binds_up": up,
        "window": window,
        "outstanding": flying,
        "capacity": capacity,
        "window_use": round(100 * flying / capacity) if capacity else 0,
        "rate_limit": values.get("rate_limit"),
        "submitted": int(values.get("submitted", 0)),
        "receipts": int(values.get("receipts", 0)),
        "reconnects": int(values.get("reconnects", 0)),
        "bind_failures": int(values.get("bind_failures", 0)),
        "errors": {**status_errors, **errors},
        "error_count": sum(status_errors.values()) + sum(errors.values()),
    }


def _chart(values: list[int]) -> list[dict[str, int]]:
    """One bar per minute, scaled to the busiest minute."""
    top = max(values, default=0) or 1
    return [{"value": v, "height": round(CHART_HEIGHT * v / top)} for v in values]
