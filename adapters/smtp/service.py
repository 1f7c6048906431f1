"""Email built from `[smtp]`: the listener; the job that queues final receipts (and
receipts a crash lost), run by every dispatching node so that a mail's receipts go out
whichever node took it, even one gone since; the reply route for inbound SMS; and the
outbox channel that mails receipts and replies through the configured relay."""

from __future__ import annotations

from adapters.smtp.channel import EMAIL_CHANNEL, EmailChannel, MailOutStore
from adapters.smtp.listener import MailHandler, MailRules, SmtpListener
from adapters.smtp.receipts import FinalReceipts
from adapters.smtp.relay import Relay
from adapters.smtp.route import MailReplyRoute
from hub.config import Config
from hub.ports import InboundRoute, OutboxChannel
from hub.services import Core, Service, Task
from hub.spoolcall import SpoolThreads


class ListenerService:
    """The SMTP listener as a node service; `port` once it listens."""

    name = "smtp"

    def __init__(self, listener: SmtpListener) -> None:
        self.listener = listener
        self.port: int | None = None

    async def start(self) -> None:
        await self.listener.start()
        self.port = self.listener.port

    async def stop(self) -> None:
        await self.listener.stop()


def build(config: Config, core: Core) -> list[Service]:
    rules = MailRules(config.hub.default_region, config.hub.timezone,
                      config.messages.max_segments)
    handler = MailHandler(config.smtp, rules, core.intake, core.credentials, core.runner)
    return [ListenerService(SmtpListener(config.smtp, handler))]


def receipt_jobs(config: Config, core: Core) -> list[Service]:
    """The receipts job, beside the outbox on a dispatching node. Any number of nodes may
    run it: each receipt is queued once (spool/mail.py)."""
    receipts = FinalReceipts(core.runner, config.smtp.final_receipt_interval,
                             wake=core.outbox.wake)
    return [Task("smtp-final-receipts", receipts.start, receipts.stop)]


def inbound_routes(config: Config, runner: SpoolThreads[MailOutStore]) -> list[InboundRoute]:
    return [MailReplyRoute(runner)] if config.smtp.enabled else []


def outbox_channels(config: Config, runner: SpoolThreads[MailOutStore]) -> dict[str, OutboxChannel]:
    if not (config.smtp.enabled and config.smtp.relay_host):
        return {}  # without a relay, receipts and replies wait in the outbox until one is set
    return {EMAIL_CHANNEL: EmailChannel(config.smtp, runner, Relay.from_section(config.smtp),
                                        config.hub.timezone)}
