#!/usr/bin/env bash
# The test command: installs what is missing, starts the embedded broker if it is
# not already up, runs pytest (arguments are passed on), and stops the broker it
# started, even when tests fail. Exits with pytest's exit code.
# One kind of test: bash deploy/test.sh tests/unit (or tests/integration, tests/e2e).
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/bootstrap.sh

started_broker=no
stop_broker() {
  if [ "$started_broker" = yes ]; then .venv/bin/lrx broker stop; fi
}
trap stop_broker EXIT

if ! .venv/bin/lrx broker status >/dev/null; then
  .venv/bin/lrx broker start
  started_broker=yes
fi
.venv/bin/lrx topics create >/dev/null
.venv/bin/ruff check --quiet .
.venv/bin/ruff format --check --quiet .

# pytest's exit code 5 ("no tests ran") is non-zero, so it fails this script too.
.venv/bin/python -m pytest "$@"
