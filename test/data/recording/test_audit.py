"""Tests for lam_ros.data.recording.audit: what makes a recorded episode misaligned."""

from pathlib import Path

from lam_ros.data import messages
from lam_ros.data.recording.audit import audit_episode
from lam_ros.data.recording.recorder import DatasetRecorder
import numpy as np

ARM = [f'panda_joint{i}' for i in range(1, 8)]
JOINTS = ARM + ['panda_finger_joint1']
STATE_NAMES = JOINTS + ['panda_finger_joint2']
GRIPPER = {'joint': 'panda_finger_joint1', 'open': 0.04, 'closed': 0.0}
CMD = '/forward_position_controller/commands'
TOPICS = {'/joint_states': messages.JOINT_STATE, CMD: messages.FLOAT64_ARRAY,
          '/task_success': messages.BOOL}
B = messages.ROSBAGS


def _record(out: Path, command_shift_s: float = 0.0, end_s: float = 2.0) -> Path:
    """
    Record one episode: the arm starts at 0.5 s, the gripper closes at 1.0 s, success at 1.5 s.

    Commands come every 50 ms, the one that causes each motion 50 ms before it; they are
    logged ``command_shift_s`` late. Joint states come every 10 ms until ``end_s``.
    """
    with DatasetRecorder(out, 'panda', JOINTS, TOPICS, {'control_rate_hz': 20.0}, 'lift',
                         action_topic=CMD) as rec:
        rec.start_episode()
        q1, finger = 0.0, 0.04
        for k in range(int(round(end_s * 100)) + 1):
            t = 1.0 + k / 100  # the clock reads 1 s at the start
            v1 = 0.5 if t >= 1.5 else 0.0
            vf = -0.1 if t >= 2.0 else 0.0
            q1, finger = q1 + v1 * 0.01, max(0.0, finger + vf * 0.01)
            pos = [q1] + [0.0] * 6 + [finger, finger]
            vel = [v1] + [0.0] * 6 + [vf, vf]
            rec.write('/joint_states', int(t * 1e9),
                      B.joint_state(int(t * 1e9), STATE_NAMES, pos, vel, [0.0] * 9))
            if k % 5 == 0 and t < 1.0 + end_s:
                cmd = [0.1 if t >= 1.45 else 0.0] + [0.0] * 6 + [0.03 if t >= 1.95 else 0.04]
                rec.write(CMD, int((t + command_shift_s) * 1e9), B.float64_array(cmd))
            if k % 3 == 0:
                rec.write('/task_success', int(t * 1e9), B.bool_msg(t >= 2.5))
        rec.stop_episode(True)
    return out / 'episode_000000'


def _audit(bag: Path):
    return audit_episode(bag, JOINTS, GRIPPER, CMD, control_period_s=0.05, state_period_s=0.01,
                         settle_s=0.5, success=True)


def test_an_episode_in_step_passes(tmp_path: Path) -> None:
    audit = _audit(_record(tmp_path / 'ok'))
    assert audit.problems == []
    assert np.isclose(audit.arm_delay_s, 0.05) and np.isclose(audit.grasp_delay_s, 0.05)
    assert np.isclose(audit.tail_after_success_s, 0.5)


def test_commands_logged_late_or_early_are_misaligned(tmp_path: Path) -> None:
    late = _audit(_record(tmp_path / 'late', command_shift_s=0.2))
    assert late.misaligned
    assert any('respond -0.150' in p for p in late.problems), late.problems
    early = _audit(_record(tmp_path / 'early', command_shift_s=-0.1))
    assert any('respond +0.150' in p for p in early.problems), early.problems


def test_a_bag_without_its_last_messages_is_misaligned(tmp_path: Path) -> None:
    audit = _audit(_record(tmp_path / 'cut', end_s=1.7))
    assert audit.misaligned
    assert any('last messages missing' in p for p in audit.problems), audit.problems
