"""Message <-> array conversion and parameter declaration of lam_ros.nodes.common."""

import numpy as np
import pytest

pytest.importorskip('rclpy')

from geometry_msgs.msg import PoseStamped  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402

from lam_ros.nodes.common import (  # noqa: E402
    camera_info_msg, command_msg, declare_config, declare_param, depth_msg, field_docs,
    image_msg, pose_from_msg, pose_msg, positions_by_name, stamp_s, time_msg, trajectory_msg)
from lam_ros.teleop.twist import TwistConfig  # noqa: E402

from .ros_harness import isolate_dds  # noqa: E402


def test_pose_convention_is_w_first_in_arrays_and_xyzw_in_messages():
    pose = [0.1, 0.2, 0.3, 0.5, 0.5, -0.5, 0.5]  # w, x, y, z
    msg = pose_msg(pose, 'panda_link0', time_msg(12.25))
    o = msg.pose.orientation
    assert (o.x, o.y, o.z, o.w) == (0.5, -0.5, 0.5, 0.5)
    assert msg.header.frame_id == 'panda_link0' and stamp_s(msg.header.stamp) == 12.25
    np.testing.assert_allclose(pose_from_msg(msg), pose)
    np.testing.assert_allclose(pose_from_msg(msg.pose), pose)
    bad = PoseStamped()
    bad.pose.position.x = float('nan')
    with pytest.raises(ValueError, match='NaN'):
        pose_from_msg(bad)
    with pytest.raises(ValueError, match='7 floats'):
        pose_msg([0, 0, 0], '', time_msg(0))


def test_time_conversion_rounds_into_the_next_second():
    t = time_msg(1.9999999999)
    assert (t.sec, t.nanosec) == (2, 0)
    with pytest.raises(ValueError, match='>= 0'):
        time_msg(-1.0)


def test_joint_selection_by_name():
    msg = JointState(name=['b', 'a', 'c'], position=[2.0, 1.0, 3.0])
    np.testing.assert_allclose(positions_by_name(msg, ['a', 'b']), [1.0, 2.0])
    with pytest.raises(ValueError, match=r"lacks joints \['d'\]"):
        positions_by_name(msg, ['a', 'd'])
    with pytest.raises(ValueError, match='2 positions'):
        positions_by_name(JointState(name=['a', 'b', 'c'], position=[1.0, 2.0]), ['a'])


def test_command_trajectory_and_camera_messages():
    assert list(command_msg(np.arange(8)).data) == list(map(float, range(8)))
    traj = trajectory_msg(['j1', 'j2'], [0.1, 0.2], 0.25)
    assert traj.points[0].time_from_start.nanosec == 250_000_000
    assert stamp_s(traj.header.stamp) == 0.0  # start on receipt
    rgb = np.zeros((4, 6, 3), np.uint8)
    rgb[1, 2] = (1, 2, 3)
    img = image_msg(rgb, time_msg(0), 'cam')
    assert (img.height, img.width, img.step, img.encoding) == (4, 6, 18, 'rgb8')
    assert bytes(img.data)[(1 * 6 + 2) * 3:(1 * 6 + 2) * 3 + 3] == b'\x01\x02\x03'
    depth = depth_msg(np.full((4, 6, 1), 0.5, np.float32), time_msg(0), 'cam')
    assert depth.encoding == '32FC1' and len(depth.data) == 4 * 6 * 4
    info = camera_info_msg(84, 84, 50.0, time_msg(0), 'cam')
    assert info.k[0] == pytest.approx(42.0 / np.tan(np.radians(25.0)))
    assert info.k[2] == pytest.approx(41.5)


def test_dataclass_parameters_carry_docs_and_accept_overrides():
    import rclpy
    from rclpy.context import Context
    from rclpy.parameter import Parameter
    isolate_dds()
    docs = field_docs(TwistConfig)
    assert docs['max_linear_speed_mps'].startswith('Linear speed cap (m/s)')
    context = Context()
    rclpy.init(context=context)
    try:
        node = rclpy.create_node('params', context=context, parameter_overrides=[
            Parameter('twist.max_linear_speed_mps', value=1),  # an int for a float
            Parameter('twist.workspace_max_m', value=[0.9, 0.5, 0.7])])
        config = declare_config(node, TwistConfig(), 'twist.')
        assert config.max_linear_speed_mps == 1.0
        assert config.workspace_max_m == (0.9, 0.5, 0.7)
        described = node.describe_parameters(['twist.max_angular_speed_radps'])[0]
        assert 'rad/s' in described.description
        assert declare_param(node, 'names', [], 'Joint names.', element_type=str) == []
        with pytest.raises(ValueError, match='element_type'):
            declare_param(node, 'other', [], 'No type.')
        bad = rclpy.create_node('bad', context=context, parameter_overrides=[
            Parameter('twist.workspace_min_m', value=[1.0, 1.0, 1.0])])
        with pytest.raises(ValueError, match='invalid parameters for TwistConfig'):
            declare_config(bad, TwistConfig(), 'twist.')
    finally:
        context.try_shutdown()
