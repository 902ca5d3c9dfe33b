"""RepeatThrottle: the first of a repeated log line goes out, its repeats are counted."""

from __future__ import annotations

import logging

from deploy.log_throttle import RepeatThrottle


def record(text: str, *args: object, name: str = "aiokafka", level: int = logging.ERROR):
    return logging.LogRecord(name, level, __file__, 1, text, args, None)


def test_repeats_within_the_window_are_held_and_counted_in_the_next_one_let_out() -> None:
    now = [0.0]
    throttle = RepeatThrottle(window=30, clock=lambda: now[0])
    line = 'Unable connect to "%s": refused'
    assert throttle.filter(record(line, "127.0.0.1:9092"))
    assert not any(throttle.filter(record(line, "127.0.0.1:9092")) for _ in range(500))
    assert throttle.filter(record(line, "127.0.0.1:9093")), "another text is another kind"
    assert throttle.filter(record(line, "127.0.0.1:9092", level=logging.WARNING))
    now[0] = 30.0
    again = record(line, "127.0.0.1:9092")
    assert throttle.filter(again)
    assert again.getMessage() == (
        'Unable connect to "127.0.0.1:9092": refused (and 500 more like it in 30s)'
    )
    assert not throttle.filter(record(line, "127.0.0.1:9092"))


def test_a_line_not_repeated_is_left_as_it_is() -> None:
    throttle = RepeatThrottle(window=30, clock=lambda: 0.0)
    once = record("batch %s delivered", "b-1", name="connectors.cmars.sink")
    assert throttle.filter(once) and once.getMessage() == "batch b-1 delivered"
