#!/usr/bin/env bash
# Set up PoseScope (first run only) and start it on http://127.0.0.1:8501.
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -x .venv/bin/streamlit ] || [ requirements.txt -nt .venv/.installed ]; then
    python3 -m venv .venv
    .venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.txt
    touch .venv/.installed
fi
.venv/bin/python models/build_models.py --check >/dev/null || {
    echo "The pose model bundles in models/ are missing or damaged; rebuild them with: .venv/bin/python models/build_models.py" >&2
    exit 1
}
# glibc gives each thread that allocates its own memory arena; with a thread per camera stream and per job,
# freed memory stays spread over many arenas and the resident size creeps up. Two arenas keep it compact.
export MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX:-2}"
exec .venv/bin/streamlit run dashboard.py "$@"
