#!/usr/bin/env bash
# The run command: installs what is missing, then runs the whole pipeline on the
# embedded broker (`lrx up`) until Ctrl-C. Arguments are passed to `lrx up`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/bootstrap.sh
exec .venv/bin/lrx up "$@"
