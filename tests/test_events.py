"""The operator's event lines: tags, folding of repeats, client addresses behind proxies."""

import logging

import pytest

from server.events import EventLog, client_address, parse_networks, request_id


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_repeats_of_one_event_for_one_client_fold_into_one_line_per_window(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    log = EventLog(fold_seconds=10, clock=clock, target=logging.getLogger("test.events"))
    with caplog.at_level(logging.INFO, logger="test.events"):
        assert log.emit(logging.WARNING, "query refused", client="1.2.3.4", limit="cost")
        for _ in range(500):
            assert not log.emit(logging.WARNING, "query refused", client="1.2.3.4")
        assert log.emit(logging.WARNING, "query refused", client="5.6.7.8")  # another client
        clock.now = 10.5
        assert log.emit(logging.WARNING, "query refused", client="1.2.3.4", request="r1")
    lines = [record.getMessage() for record in caplog.records]
    assert lines == [
        "query refused client=1.2.3.4 operation=- request=- limit=cost",
        "query refused client=5.6.7.8 operation=- request=-",
        "query refused client=1.2.3.4 operation=- request=r1 repeated=500",
    ]


def scope(peer: str, forwarded: str | None = None) -> dict[str, object]:
    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded else []
    return {"type": "http", "client": (peer, 5555), "headers": headers}


def test_client_address_is_the_peer_unless_the_peer_is_a_trusted_proxy() -> None:
    trusted = parse_networks("10.0.0.0/8, 127.0.0.1")
    assert client_address(scope("9.9.9.9", "1.1.1.1")) == "9.9.9.9"
    assert client_address(scope("9.9.9.9", "1.1.1.1"), trusted) == "9.9.9.9"
    assert client_address(scope("10.1.2.3", "1.1.1.1"), trusted) == "1.1.1.1"
    # A client cannot hide behind a hop it wrote itself: the right-most untrusted hop counts.
    assert client_address(scope("127.0.0.1", "6.6.6.6, 2.2.2.2, 10.0.0.7"), trusted) == "2.2.2.2"
    assert client_address(scope("127.0.0.1"), trusted) == "127.0.0.1"


def test_request_id_is_made_once_per_scope() -> None:
    one: dict[str, object] = {}
    assert request_id(one) == request_id(one)
    assert request_id(one) != request_id({})
