"""The FTP drop built from `[ftp]`: batch-job settings (group size, retry delays) read
from the section, the drop sharing the node's intake and spool seam."""

from __future__ import annotations

from adapters.csv.rows import FileRules
from adapters.ftp.drop import FtpDrop
from adapters.ftp.jobs import JobSettings
from hub.config import Config
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
    return FtpDrop(config.ftp, job_settings(config), core.intake, core.runner,
                   config.data_dir)
