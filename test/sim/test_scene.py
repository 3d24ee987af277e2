"""The simulated controller keeps every joint inside its URDF position and velocity limits."""

from lam_ros.sim import make_env
from lam_ros.sim.robot import joint_limits, JOINT_NAMES
import numpy as np
import pytest

LIMITS = joint_limits(JOINT_NAMES)
# Far steps from the start pose to a joint limit that reach it without hitting the table or
# the arm itself (a collision is physics, not the controller).
FAR_STEPS = [(j, end) for j in (0, 3, 4, 5, 6, 7) for end in ('lower', 'upper')] + \
    [(1, 'lower')]


@pytest.mark.parametrize('joint,end', FAR_STEPS)
def test_far_step_respects_position_and_velocity_limits(joint, end):
    env = make_env('lift')
    try:
        env.reset(seed=0)
        target = env._targets.copy()
        target[joint] = getattr(LIMITS, end)[joint]
        env.set_joint_targets(target)
        peak_speed = np.zeros(8)
        for _ in range(int(2.0 * env.config.physics_rate_hz)):
            env.step_physics(1)
            _, pos, vel, _ = env.joint_state()
            peak_speed = np.maximum(peak_speed, np.abs(vel[:8]))
            assert np.all(pos[:8] <= LIMITS.upper + 1e-3), pos
            assert np.all(pos[:8] >= LIMITS.lower - 1e-3), pos
        assert np.all(peak_speed <= 1.01 * LIMITS.velocity), peak_speed / LIMITS.velocity
        # and it does get there, at about the velocity limit
        assert abs(pos[joint] - target[joint]) < 0.05 or \
            peak_speed[joint] > 0.9 * LIMITS.velocity[joint]
    finally:
        env.close()


def test_gym_step_with_a_far_action_stays_within_limits():
    """env.step: a far action moves at most the velocity limit per control period."""
    env = make_env('lift')
    try:
        obs, _ = env.reset(seed=1)
        action = env._targets.copy()
        action[[0, 6]] = LIMITS.upper[[0, 6]]
        dt = 1.0 / env.config.control_rate_hz
        for _ in range(40):
            previous = obs['joint_pos'].astype(np.float64)
            obs, *_ = env.step(action.astype(np.float32))
            q = obs['joint_pos'].astype(np.float64)
            assert np.all(q <= LIMITS.upper + 1e-3) and np.all(q >= LIMITS.lower - 1e-3)
            assert np.all(np.abs(q - previous) <= 1.01 * LIMITS.velocity * dt + 1e-4)
        assert abs(q[0] - LIMITS.upper[0]) < 0.01  # it gets there in 40 steps
    finally:
        env.close()
