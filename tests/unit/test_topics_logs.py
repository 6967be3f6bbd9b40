"""aiokafka's log records held back while a command's first broker contact is made."""

from __future__ import annotations

import logging

import pytest

from slawatch.streams.topics import _holding_client_logs


def test_records_a_hold_keeps_are_passed_on_and_the_logger_restored(caplog) -> None:
    logger = logging.getLogger("aiokafka")
    with caplog.at_level(logging.INFO, logger="aiokafka"), _holding_client_logs() as held:
        assert not logger.propagate
        logger.warning("later")
        assert caplog.records == []
        assert len(held.records) == 1
    assert logger.propagate
    assert [r.getMessage() for r in caplog.records] == ["later"]


def test_records_the_caller_reported_are_not_passed_on(caplog) -> None:
    with caplog.at_level(logging.INFO, logger="aiokafka"), _holding_client_logs() as held:
        logging.getLogger("aiokafka.conn").error("said in slawatch's own line")
        held.records.clear()
    assert caplog.records == []


def test_a_second_hold_inside_the_first_is_refused() -> None:
    logger = logging.getLogger("aiokafka")
    with (
        _holding_client_logs(),
        pytest.raises(RuntimeError, match="already held"),
        _holding_client_logs(),
    ):
        pass
    assert logger.propagate
