"""Wiring of the webhook channel, and of the dialects' delivery-report pushes, from
`[webhooks]`: the channels the outbox delivers through, and how the outbox works them
(batch size, concurrency, three days of retries), the same for both."""

from __future__ import annotations

from adapters.webhooks import pushes
from adapters.webhooks.channel import CHANNEL, WebhookChannel
from hub.config import Config
from hub.outbox import ChannelTuning
from hub.policies import RetryPolicy
from hub.ports import OutboxChannel, WebhookStore
from hub.spoolcall import SpoolThreads
from hub.webhooks import parse_networks


def outbox_channels(config: Config,
                    runner: SpoolThreads[WebhookStore]) -> dict[str, OutboxChannel]:
    w = config.webhooks
    if not w.enabled:
        return {}  # events still queue in the spool, delivered once webhooks are on
    allowed = parse_networks(w.allow_networks)
    return {CHANNEL: WebhookChannel(runner, allowed, w.timeout, w.connections),
            pushes.CHANNEL: pushes.PushChannel(allowed, w.timeout, w.connections)}


def tuning(config: Config) -> dict[str, ChannelTuning]:
    w = config.webhooks
    # The period bounds the retries; the attempt count is only a backstop far beyond it.
    policy = RetryPolicy(max_attempts=10_000, base=w.retry_base, cap=w.retry_cap,
                         max_age=w.retry_period)
    tune = ChannelTuning(policy, w.batch_size, w.concurrency, w.poll_interval,
                         per_target=w.per_endpoint)
    return {CHANNEL: tune, pushes.CHANNEL: tune}
