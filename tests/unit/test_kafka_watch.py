"""KafkaWatch: a worker whose Kafka stays silent for the read timeout crashes, not before."""

from __future__ import annotations

from aiokafka.errors import KafkaConnectionError

from streams.kafka.errors import KafkaUnavailable
from streams.worker.kafka_watch import KafkaWatch


class Script:
    """A probe that answers or fails as scripted, on a fake clock that sleeps instantly."""

    def __init__(self, answers: list[bool]) -> None:
        self.answers = answers
        self.now = 0.0
        self.lost: list[BaseException] = []

    async def probe(self) -> None:
        if not self.answers.pop(0):
            raise KafkaConnectionError("Unable to bootstrap")

    async def sleep(self, seconds: float) -> None:
        self.now += seconds

    async def crash(self, error: BaseException) -> None:
        self.lost.append(error)

    def watch(self, timeout: float, interval: float) -> KafkaWatch:
        return KafkaWatch(
            self.probe, timeout, self.crash, interval=interval, clock=lambda: self.now,
            sleep=self.sleep,
        )  # fmt: skip


async def test_silence_for_the_whole_timeout_crashes_the_worker_once() -> None:
    script = Script([True, False, False, False, True])
    await script.watch(timeout=15, interval=5).run()
    [error] = script.lost
    assert isinstance(error, KafkaUnavailable)
    assert str(error).startswith("Kafka has not answered for 15s (LRX_PIPELINE_READ_TIMEOUT 15s)")
    assert script.answers == [True], "it stopped asking once it had crashed the worker"


async def test_an_answer_restarts_the_silence() -> None:
    # Silent 10 s, answers, silent 10 s again: never 15 s in a row.
    script = Script([False, False, True, False, False, True, False, False, False, False])
    await script.watch(timeout=15, interval=5).run()
    assert len(script.lost) == 1
    assert script.now == 40, "the crash came 15 s after the last answer (at 25 s), not sooner"


async def test_the_interval_is_never_longer_than_the_timeout() -> None:
    script = Script([False, False, False])
    await script.watch(timeout=2, interval=5).run()
    assert script.now == 2 and len(script.lost) == 1
