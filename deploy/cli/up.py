"""`lrx up`: run the whole pipeline locally until Ctrl-C or SIGTERM."""

from __future__ import annotations

import signal
import threading

import click

from deploy.settings import Settings
from deploy.stack import LocalStack, StackError, components_of


@click.command("up")
@click.option(
    "--no-emulator",
    is_flag=True,
    help="Do not start the CMaRS emulator, even with LRX_CMARS_URL empty (one runs already).",
)
@click.pass_obj
def command(settings: Settings, no_emulator: bool) -> None:
    """Start the broker, topics, worker, CMaRS sink, gateway and CMaRS emulator.

    The embedded broker is started only when LRX_KAFKA_BOOTSTRAP is empty, and
    only if it is not already running. The CMaRS emulator is started when
    LRX_CMARS_URL is empty, the setting that points the sink at it
    (LRX_EMULATOR_HOST, _PORT, _TOKEN); with LRX_CMARS_URL set, the sink
    delivers to that CMaRS and no emulator runs. It prints where
    each component listens and where its log is, then runs until Ctrl-C or
    SIGTERM, when it stops every component it started, newest first, and
    nothing else. If a component dies, the stack stops too, with its log tail.
    """
    with_emulator = not (no_emulator or settings.cmars_url)
    stack = LocalStack(settings, components_of(settings, with_emulator))
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    try:
        stack.start(click.echo)
        click.echo("lrx is up. Try `lrx demo` in another shell. Ctrl-C stops everything.")
        while not stopping.wait(1.0):
            dead = stack.exited()
            if dead is not None:
                raise StackError(
                    f"{dead.name} exited with code {dead.process.returncode}; "
                    f"see {stack.logs / (dead.name + '.log')}"
                )
    except StackError as error:
        click.echo(f"Error: {error}", err=True)
        stack.stop(click.echo)
        raise SystemExit(1) from None
    finally:
        if stack.started or stack.started_broker:
            stack.stop(click.echo)
    click.echo("lrx is down.")
