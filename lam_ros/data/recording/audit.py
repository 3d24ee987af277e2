"""
Is a recorded episode in step? Commands against the joint states, first and last messages.

An episode is **misaligned** when any of these holds (all times are bag log times):

- the arm (or the gripper) moves in the joint states more than one state period *before*
  the command that moves it, or more than one control period *after* it; the motion is seen
  at the first joint state sample that shows it, up to one state period after it began, so
  the allowed response is -1 state period .. +1 control period + 1 state period; the events
  checked are the first arm command that departs from the measured pose and the first command
  that moves the gripper from open towards closed;
- the bag misses its first messages: the first joint state comes after the first command, or
  the arm is already moving in it;
- the bag misses its last messages: an episode saved as a success has no true success
  message, or fewer than ``settle_s`` (less one control period) of joint states after it;
- the joint states have a gap longer than 2.5 state periods (dropped messages).

Nothing here imports rclpy; ``benchmarks/bench_ros_demos.py`` and the node tests use it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, List, Mapping, Optional, Sequence

from lam_ros.data import messages
import numpy as np
from rosbags.highlevel import AnyReader

ARM_MOVING_RAD_S = 0.02
"""Arm joint speed (rad/s) above which the arm counts as moving."""
GRIPPER_MOVING = 0.01
"""Gripper joint speed (m/s or rad/s) above which the gripper counts as moving."""


@dataclass
class EpisodeAudit:
    """Timing of one recorded episode and what is wrong with it."""

    name: str
    arm_delay_s: Optional[float] = None
    """First arm motion in the joint states minus the log time of the command causing it."""
    grasp_delay_s: Optional[float] = None
    """First closing of the gripper in the joint states minus the first closing command."""
    max_state_gap_s: float = 0.0
    """Longest interval between consecutive joint states (s)."""
    tail_after_success_s: Optional[float] = None
    """Joint states recorded after the first true success message (s)."""
    problems: List[str] = field(default_factory=list)
    """Why the episode is misaligned; empty when it is in step."""

    @property
    def misaligned(self) -> bool:
        """Whether any check failed."""
        return bool(self.problems)


def _read(bag: Path, topics: Sequence[str]) -> dict:
    out: dict = {t: [] for t in topics}
    with AnyReader([bag], default_typestore=messages.TYPESTORE) as reader:
        conns = [c for c in reader.connections if c.topic in out]
        for conn, t_ns, raw in reader.messages(connections=conns):
            out[conn.topic].append((t_ns, messages.deserialize(raw, conn.msgtype)))
    return out


def _onset(times_s: np.ndarray, moving: np.ndarray, after_s: float) -> Optional[float]:
    """Return the time of the first moving sample at or after ``after_s``."""
    idx = np.flatnonzero(moving & (times_s >= after_s))
    return float(times_s[idx[0]]) if idx.size else None


def audit_episode(bag: Path, joint_names: Sequence[str], gripper: Mapping[str, Any],
                  command_topic: str, state_topic: str = '/joint_states',
                  success_topic: str = '/task_success', control_period_s: float = 0.05,
                  state_period_s: float = 0.01, settle_s: Optional[float] = None,
                  success: Optional[bool] = None) -> EpisodeAudit:
    """
    Check one episode's bag (Float64MultiArray commands in ``joint_names`` order).

    ``gripper`` is the dataset's gripper model (``joint``, ``open``, ``closed``);
    ``settle_s`` the time recorded after success before the stop (None: not checked).
    """
    bag = Path(bag)
    audit = EpisodeAudit(bag.name)
    data = _read(bag, [command_topic, state_topic, success_topic])
    states, commands = data[state_topic], data[command_topic]
    if not states or not commands:
        audit.problems.append(f'no {"joint states" if not states else "commands"} in the bag')
        return audit
    names = list(states[0][1].name)
    arm = [names.index(n) for n in joint_names if n != gripper.get('joint')]
    t_state = np.array([t for t, _ in states], dtype=np.int64) * 1e-9
    pos = np.array([m.position for _, m in states], dtype=np.float64)
    vel = np.array([m.velocity if len(m.velocity) == len(names) else np.zeros(len(names))
                    for _, m in states], dtype=np.float64)
    if not np.any(vel):
        vel = np.gradient(pos, t_state, axis=0) if len(t_state) > 1 else vel
    t_cmd = np.array([t for t, _ in commands], dtype=np.int64) * 1e-9
    cmd = np.array([m.data for _, m in commands], dtype=np.float64)
    arm_cmd = [list(joint_names).index(names[i]) for i in arm]

    gaps = np.diff(t_state)
    audit.max_state_gap_s = float(gaps.max()) if gaps.size else 0.0
    if gaps.size and np.any(gaps <= 0):
        audit.problems.append('joint state log times do not increase')
    if audit.max_state_gap_s > 2.5 * state_period_s:
        audit.problems.append(f'joint states missing: a gap of {audit.max_state_gap_s:.3f} s')
    arm_moving = np.abs(vel[:, arm]).max(axis=1) > ARM_MOVING_RAD_S
    if t_state[0] > t_cmd[0]:
        audit.problems.append(f'first messages missing: the first joint state comes '
                              f'{t_state[0] - t_cmd[0]:.3f} s after the first command')
    elif arm_moving[0]:
        audit.problems.append('first messages missing: the arm is already moving in the first '
                              'joint state')

    def check(what: str, t_event: float, onset: Optional[float]) -> Optional[float]:
        if onset is None:
            audit.problems.append(f'{what}: no response in the joint states')
            return None
        delay = onset - t_event
        latest = control_period_s + state_period_s  # + sampling: see the module docstring
        if delay < -state_period_s or delay > latest:
            audit.problems.append(f'{what}: the joint states respond {delay:+.3f} s after the '
                                  f'command (allowed {-state_period_s:+.3f} .. '
                                  f'{latest:+.3f} s)')
        return delay

    # The first arm command that departs from the measured pose (not a hold).
    held = pos[np.clip(np.searchsorted(t_state, t_cmd, side='right') - 1, 0, None)][:, arm]
    departs = np.flatnonzero(np.abs(cmd[:, arm_cmd] - held).max(axis=1) > 1e-3)
    if departs.size:
        t_move = t_cmd[departs[0]]
        audit.arm_delay_s = check('first arm command', t_move,
                                  _onset(t_state, arm_moving, t_move - 1.0))
    joint = gripper.get('joint')
    if joint in names and joint in joint_names:
        g_open, g_closed = float(gripper['open']), float(gripper['closed'])
        g_cmd = cmd[:, list(joint_names).index(joint)]
        # The gate ramps the gripper: the first command that leaves "open" (after one at
        # open: an episode may begin with the fingers part-way) starts the close.
        away = (g_cmd - g_open) * np.sign(g_closed - g_open) > 0.05 * abs(g_closed - g_open)
        closing = np.flatnonzero(away[1:] & ~away[:-1]) + 1
        if closing.size:
            t_close = t_cmd[closing[0]]
            g_vel = vel[:, names.index(joint)] * np.sign(g_closed - g_open)
            audit.grasp_delay_s = check('first gripper close', t_close,
                                        _onset(t_state, g_vel > GRIPPER_MOVING, t_close - 1.0))
    flags = [(t * 1e-9, bool(m.data)) for t, m in data[success_topic]]
    first_true = next((t for t, ok in flags if ok), None)
    if first_true is not None:
        audit.tail_after_success_s = float(t_state[-1] - first_true)
    if success:
        if first_true is None:
            audit.problems.append('last messages missing: a successful episode without a true '
                                  'success message')
        elif settle_s is not None and \
                audit.tail_after_success_s < settle_s - control_period_s:
            audit.problems.append(f'last messages missing: {audit.tail_after_success_s:.3f} s '
                                  f'of joint states after success, {settle_s} s expected')
    return audit
