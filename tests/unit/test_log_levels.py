"""Third-party loggers that speak per tick are quiet at the default level."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from hub.cli import _logging
from hub.config import load, with_overrides


@pytest.fixture
def restore() -> Iterator[None]:
    names = ("alembic", "httpx", "mail.log", "pyftpdlib")
    before = {n: logging.getLogger(n).level for n in names}
    yield
    for name, level in before.items():
        logging.getLogger(name).setLevel(level)


@pytest.mark.usefixtures("restore")
def test_schema_checks_and_upstream_requests_are_not_logged_at_the_default_level() -> None:
    _logging(load(None, env={}))
    for name in ("alembic.runtime.migration", "httpx"):
        assert not logging.getLogger(name).isEnabledFor(logging.INFO)
        assert logging.getLogger(name).isEnabledFor(logging.WARNING)


@pytest.mark.usefixtures("restore")
def test_at_debug_level_they_speak_again() -> None:
    logging.getLogger("alembic").setLevel(logging.NOTSET)
    _logging(with_overrides(load(None, env={}), hub={"log_level": "debug"}))
    assert logging.getLogger("alembic").level == logging.NOTSET


@pytest.mark.usefixtures("restore")
def test_smtp_and_ftp_commands_are_not_logged_at_the_default_level() -> None:
    _logging(load(None, env={}))
    for name in ("mail.log", "pyftpdlib.handlers"):
        assert not logging.getLogger(name).isEnabledFor(logging.INFO)
        assert logging.getLogger(name).isEnabledFor(logging.WARNING)
