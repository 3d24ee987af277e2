"""SimDriver's trajectory interface: partial goals as joint_trajectory_controller treats them."""

from lam_ros.sim import make_env
from lam_ros.sim.robot import JOINT_NAMES
from lam_ros.sim.stream import CommandRejected, SimDriver, SimStream
import numpy as np
import pytest


def test_partial_goals_need_allow_partial_joints_goal():
    env = make_env('lift')
    try:
        env.reset(seed=0)
        driver = SimDriver(env, SimStream(env, 100.0, 30.0), JOINT_NAMES)
        start = driver.targets.copy()
        with pytest.raises(CommandRejected, match='allow_partial_joints_goal'):
            driver.follow(['panda_joint1'], [[0.3]], [0.2])
        assert not driver.trajectory.active
        driver.follow(list(JOINT_NAMES), [list(start)], [0.2])  # a full goal is fine
        driver.allow_partial_joints_goal = True
        driver.follow(['panda_joint1'], [[0.3]], [0.2])
        driver.run_until(driver.sim_s + 0.3)
        assert driver.targets[0] == pytest.approx(0.3)
        np.testing.assert_allclose(driver.targets[1:], start[1:])
    finally:
        env.close()
