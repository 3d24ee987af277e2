#!/usr/bin/env bash
# Create .venv at the repository root and install lam_ros with everything it needs, including
# rclpy and the message packages from PyPI (for machines without a ROS 2 distro).
# Usage: bash scripts/setup.sh        (idempotent; re-run after pulling changes)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
# A CPU build of torch pinned on purpose: an unpinned torch pulls several GB of CUDA wheels.
.venv/bin/pip install --quiet --disable-pip-version-check 'torch==2.13.0'
.venv/bin/pip install --quiet --disable-pip-version-check '.[ros,dev]'
echo "lam_ros installed in $(pwd)/.venv"
