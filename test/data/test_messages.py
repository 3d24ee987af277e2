"""Tests for lam_ros.data.messages: builders, pose order, CDR round trips with rclpy bytes."""

from lam_ros.data import messages as m
import numpy as np
import pytest
from rosbags.serde import SerdeError

NAMES = [f'panda_joint{i}' for i in range(1, 8)] + ['panda_finger_joint1', 'panda_finger_joint2']


def test_joint_state_round_trip() -> None:
    """A JointState survives serialize/deserialize with names, order and stamp."""
    pos = np.linspace(-1.0, 1.0, 9)
    msg = m.joint_state(1_500_000_123, NAMES, pos, vel=pos * 2)
    back = m.deserialize(m.serialize(msg), m.JOINT_STATE)
    assert list(back.name) == NAMES
    np.testing.assert_array_equal(back.position, pos)
    np.testing.assert_array_equal(back.velocity, pos * 2)
    assert back.effort.size == 0
    assert m.stamp_to_ns(back.header.stamp) == 1_500_000_123


def test_joint_state_rejects_length_mismatch() -> None:
    """Arrays that do not match the names fail with a message naming both sizes."""
    with pytest.raises(ValueError, match='pos has 3 values but there are 9'):
        m.joint_state(0, NAMES, [0.0, 1.0, 2.0])


def test_negative_stamp_rejected() -> None:
    """Stamps are non-negative nanoseconds."""
    with pytest.raises(ValueError, match='stamp_ns'):
        m.header(-1)


def test_pose_order_w_first_to_ros_xyzw() -> None:
    """The package pose [x y z qw qx qy qz] maps to ROS x-y-z-w and back."""
    pose7 = [0.1, 0.2, 0.3, 0.5, -0.5, 0.5, -0.5]
    msg = m.pose_stamped(7, 'panda_link0', pose7)
    q = msg.pose.orientation
    assert (q.x, q.y, q.z, q.w) == (-0.5, 0.5, -0.5, 0.5)
    back = m.deserialize(m.serialize(msg), m.POSE_STAMPED)
    np.testing.assert_array_equal(m.pose7_from_msg(back), pose7)
    assert back.header.frame_id == 'panda_link0'
    with pytest.raises(ValueError, match='7 floats'):
        m.pose_stamped(0, 'w', [0.0] * 6)


def test_float64_array_and_trajectory() -> None:
    """Commands serialise in both command interfaces."""
    cmd = m.deserialize(m.serialize(m.float64_array(np.arange(8.0))), m.FLOAT64_ARRAY)
    np.testing.assert_array_equal(cmd.data, np.arange(8.0))
    traj = m.joint_trajectory(5, NAMES[:8], np.ones((2, 8)), [0.1, 0.2])
    back = m.deserialize(m.serialize(traj), m.JOINT_TRAJECTORY)
    assert len(back.points) == 2 and back.points[1].time_from_start.nanosec == 200_000_000
    with pytest.raises(ValueError, match='shape'):
        m.joint_trajectory(5, NAMES[:8], np.ones((2, 7)), [0.1, 0.2])


def test_images_and_camera_info() -> None:
    """RGB and depth images round-trip through CDR; unknown dtypes are rejected."""
    rgb = np.random.default_rng(0).integers(0, 255, (4, 6, 3), dtype=np.uint8)
    msg = m.deserialize(m.serialize(m.image(3, 'cam', rgb)), m.IMAGE)
    assert msg.encoding == 'rgb8' and msg.step == 18
    np.testing.assert_array_equal(m.image_to_array(msg), rgb)
    depth = np.full((4, 6, 1), 0.75, dtype=np.float32)
    dmsg = m.deserialize(m.serialize(m.image(3, 'cam', depth)), m.IMAGE)
    assert dmsg.encoding == '32FC1'
    np.testing.assert_array_equal(m.image_to_array(dmsg), depth)
    with pytest.raises(ValueError, match='no image encoding'):
        m.image(0, 'cam', np.zeros((2, 2, 2), dtype=np.int64))
    info = m.deserialize(m.serialize(m.camera_info(0, 'cam', 6, 4, np.eye(3))), m.CAMERA_INFO)
    assert info.width == 6 and list(info.p[:4]) == [1.0, 0.0, 0.0, 0.0]


def test_unknown_type_and_corrupt_bytes() -> None:
    """Bad input fails clearly."""
    with pytest.raises(ValueError, match='unknown message type'):
        m.deserialize(b'\x00\x01\x00\x00', 'nope/msg/Nope')
    with pytest.raises(SerdeError):
        m.deserialize(b'\x00\x01\x00\x00\x05', m.JOINT_STATE)
    raw = m.serialize(m.joint_state(0, NAMES, np.zeros(9)))
    with pytest.raises(SerdeError, match='size mismatch'):
        m.deserialize(raw + bytes(64), m.JOINT_STATE)


def test_rclpy_bytes_are_read_and_normalised() -> None:
    """Bytes from rclpy's serializer (Fast CDR padding) deserialise and normalise to strict CDR."""
    serialization = pytest.importorskip('rclpy.serialization')
    sensor_msgs = pytest.importorskip('sensor_msgs.msg')
    std_msgs = pytest.importorskip('std_msgs.msg')
    cases = [
        (sensor_msgs.JointState(name=NAMES, position=list(range(9))), m.JOINT_STATE),
        (sensor_msgs.JointState(), m.JOINT_STATE),
        (std_msgs.Float64MultiArray(), m.FLOAT64_ARRAY),
        (std_msgs.Float64MultiArray(data=[1.0, 2.0]), m.FLOAT64_ARRAY),
    ]
    for ros_msg, msgtype in cases:
        raw = bytes(serialization.serialize_message(ros_msg))
        msg = m.deserialize(raw, msgtype)
        norm = m.normalize_cdr(raw, msgtype)
        # the strict rosbags check must accept the normalised bytes
        strict = m.TYPESTORE.deserialize_cdr(norm, msgtype)
        assert len(norm) == len(m.serialize(msg, msgtype))
        assert m.serialize(strict, msgtype) == m.serialize(msg, msgtype)
