"""Message <-> array conversion and parameter declaration of lam_ros.nodes.common."""

import numpy as np
import pytest

pytest.importorskip('rclpy')

from geometry_msgs.msg import PoseStamped  # noqa: E402, I100
from sensor_msgs.msg import JointState  # noqa: E402

from lam_ros.data import messages as m  # noqa: E402, I100
from lam_ros.nodes.common import (  # noqa: E402
    declare_config, declare_param, field_docs, MSG, pose_from_msg, positions_by_name, stamp_s)
from lam_ros.teleop.twist import TwistConfig  # noqa: E402

from .ros_harness import isolate_dds  # noqa: E402


def test_pose_convention_is_w_first_in_arrays_and_xyzw_in_messages():
    pose = [0.1, 0.2, 0.3, 0.5, 0.5, -0.5, 0.5]  # w, x, y, z
    msg = MSG.pose_stamped(12_250_000_000, 'panda_link0', pose)
    assert isinstance(msg, PoseStamped)
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
        MSG.pose_stamped(0, '', [0, 0, 0])


def test_time_stamps_are_nanoseconds():
    t = MSG.time(m.seconds_to_ns(1.9999999999))
    assert (t.sec, t.nanosec) == (2, 0)
    with pytest.raises(ValueError, match='>= 0'):
        MSG.time(-1)


def test_joint_selection_by_name():
    msg = JointState(name=['b', 'a', 'c'], position=[2.0, 1.0, 3.0])
    np.testing.assert_allclose(positions_by_name(msg, ['a', 'b']), [1.0, 2.0])
    with pytest.raises(ValueError, match=r"lacks joints \['d'\]"):
        positions_by_name(msg, ['a', 'd'])
    with pytest.raises(ValueError, match='2 positions'):
        positions_by_name(JointState(name=['a', 'b', 'c'], position=[1.0, 2.0]), ['a'])


def test_rclpy_and_rosbags_messages_carry_the_same_fields():
    """One builder, two flavours: every field of the rclpy message equals the bag one's."""
    rgb = np.zeros((4, 6, 3), np.uint8)
    rgb[1, 2] = (1, 2, 3)
    k = np.array([[42.0, 0.0, 2.5], [0.0, 42.0, 1.5], [0.0, 0.0, 1.0]])
    cases = [
        ('joint_state', (5, ['a', 'b'], [0.1, 0.2], [1.0, 2.0], [0.0, 0.0])),
        ('float64_array', (np.arange(8.0),)),
        ('joint_trajectory', (0, ['j1', 'j2'], [0.1, 0.2], [0.25])),
        ('pose_stamped', (7, 'base', [1, 2, 3, 0.5, 0.5, -0.5, 0.5])),
        ('image', (9, 'cam', rgb)),
        ('image', (9, 'cam', np.full((4, 6, 1), 0.5, np.float32))),
        ('camera_info', (9, 'cam', 6, 4, k)),
    ]
    for name, args in cases:
        ours = getattr(MSG, name)(*args)
        bag = m.deserialize(m.serialize(getattr(m.ROSBAGS, name)(*args)), ours.__class__
                            .__module__.split('.')[0] + '/msg/' + type(ours).__name__)
        for field in ours.get_fields_and_field_types():
            assert _plain(getattr(ours, field)) == _plain(getattr(bag, field)), (name, field)


def _plain(value):
    if hasattr(value, 'get_fields_and_field_types'):
        return {f: _plain(getattr(value, f)) for f in value.get_fields_and_field_types()}
    if hasattr(value, '__dataclass_fields__'):
        return {f: _plain(getattr(value, f)) for f in value.__dataclass_fields__
                if f != '__msgtype__'}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (bytes, bytearray, np.ndarray)) or type(value).__name__ == 'array':
        return np.asarray(bytearray(value) if isinstance(value, bytes) else value).tolist()
    return value


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
