"""The FTP drop built from `[ftp]`: batch-job settings (group size, retry delays) read
from the section, the drop sharing the node's intake and spool seam, its batches leased
in the node's name for three heartbeats."""

from __future__ import annotations

from adapters.csv.rows import FileRules
from adapters.ftp.drop import FtpDrop
from adapters.ftp.jobs import JobSettings, Lease
from hub.config import Config
from hub.nodes import MISSED_BEATS
from hub.services import Core


def job_settings(config: Config) -> JobSettings:
    ftp = config.ftp
    return JobSettings(
        FileRules(config.hub.default_region, config.hub.timezone),
        rows_per_group=ftp.rows_per_group, duplicate_window=ftp.duplicate_window,
        report_interval=ftp.report_interval, progress_interval=ftp.progress_interval,
        # group_retries waits, doubling from group_retry_delay: 0.5, 1, 2 s by default
        retry_delays=tuple(ftp.group_retry_delay * 2**i for i in range(ftp.group_retries)),
    )


def build(config: Config, core: Core) -> FtpDrop:
    # A batch's lease lapses as a node's heartbeat goes stale: after three missed beats.
    lease = Lease(config.node, MISSED_BEATS * config.hub.heartbeat_interval)
    return FtpDrop(config.ftp, job_settings(config), core.intake, core.runner,
                   config.data_dir, lease, config.privacy)
