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


def test_each_camera_streams_at_its_own_rate_under_its_own_topics():
    from collections import Counter
    from lam_ros.data.messages import ROSBAGS
    from lam_ros.sim.stream import sample_message, sim_topics
    env = make_env('lift', camera_observations=False, cameras={
        'scene': {'enabled': True, 'width': 16, 'height': 12, 'rate_hz': 10.0, 'depth': False},
        'wrist': {'enabled': True, 'width': 8, 'height': 8, 'rate_hz': 5.0, 'depth': True}})
    try:
        env.reset(seed=0)
        assert not [k for k in env.observation() if k.endswith('_rgb')]
        stream = SimStream(env, 100.0, 30.0)
        assert stream.roles() == ['joint_state', 'object_pose', 'success', 'scene/image',
                                  'scene/camera_info', 'wrist/image', 'wrist/camera_info',
                                  'wrist/depth']
        driver = SimDriver(env, stream, JOINT_NAMES)
        samples = driver.due_now() + driver.run_until(0.999)
        counts = Counter(s.role for s in samples)
        assert (counts['scene/image'], counts['wrist/image'], counts['wrist/depth']) == (10, 5, 5)
        topics = sim_topics(env.robot, stream.cameras)
        assert topics['wrist/depth'] == ('wrist_camera/depth/image_raw', 'sensor_msgs/msg/Image')
        frames = {'scene': 'a', 'wrist': 'b'}
        wrist = next(s for s in samples if s.role == 'wrist/image')
        msg = sample_message(ROSBAGS, wrist, 5, 'base', frames)
        assert (msg.width, msg.height, msg.encoding, msg.header.frame_id) == (8, 8, 'rgb8', 'b')
        depth = next(s for s in samples if s.role == 'wrist/depth')
        assert sample_message(ROSBAGS, depth, 5, 'base', frames).encoding == '32FC1'
        with pytest.raises(ValueError, match=r"cameras \['top'\] are not enabled"):
            SimStream(env, 100.0, 30.0, ['top'])
    finally:
        env.close()
