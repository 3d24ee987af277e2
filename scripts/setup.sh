#!/usr/bin/env bash
# Create .venv at the repository root and install lam_ros with everything it needs, including
# rclpy and the message packages from PyPI (for machines without a ROS 2 distro).
# Usage: bash scripts/setup.sh        (idempotent; re-run after pulling changes)
#   ROS_DISTRO=jazzy bash scripts/setup.sh   ROS 2 Jazzy's wheels (the LTS) instead of Kilted's
#   VENV=path bash scripts/setup.sh          another venv than .venv
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"
DISTRO="${ROS_DISTRO:-kilted}"
case "$DISTRO" in
    kilted) EXTRA=ros ;;
    jazzy) EXTRA=ros-jazzy ;;
    *)
        echo "ROS_DISTRO=$DISTRO: PyPI has rclpy wheels for kilted (the default) and jazzy." >&2
        echo "With a sourced ROS 2 distro, build with colcon instead (README)." >&2
        exit 2 ;;
esac
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
    echo "$DISTRO" > "$VENV/lam_ros_distro"
fi
# One distribution per venv: mixing Kilted's and Jazzy's wheels breaks rclpy.
if [ "$(cat "$VENV/lam_ros_distro" 2>/dev/null || echo kilted)" != "$DISTRO" ]; then
    echo "$VENV holds ROS 2 $(cat "$VENV/lam_ros_distro" 2>/dev/null || echo kilted), not" \
         "$DISTRO: remove it or pick another VENV=..." >&2
    exit 2
fi
# A CPU build of torch pinned on purpose: an unpinned torch pulls several GB of CUDA wheels.
"$VENV/bin/pip" install --quiet --disable-pip-version-check 'torch==2.13.0'
"$VENV/bin/pip" install --quiet --disable-pip-version-check ".[$EXTRA,dev]"
echo "lam_ros installed in $(cd "$VENV" && pwd) (ROS 2 $DISTRO)"
