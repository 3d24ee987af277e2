"""Republish a recorded episode's joint commands at their original timing.

Driven by ``lam-ros dataset replay``: the commands come from a bag (already in
``joint_names`` order) and go to a robot's or ``sim_node``'s command topic, as a
``Float64MultiArray`` (forward_command_controller) or a one-point ``JointTrajectory``.
Before the first command the node waits for a subscriber and, unless told otherwise, for a
joint state, and refuses to start when the arm is far from the first command: a replay must
not jump.
"""

from __future__ import annotations

import time
from typing import Optional, Sequence

import numpy as np
import rclpy
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory

from lam_ros.nodes.common import (command_msg, COMMAND_QOS, declare_param, positions_by_name,
                                  STATE_SUB_QOS, trajectory_msg)

INTERFACES = ('forward', 'trajectory')


class ReplayNode(Node):
    """Plays one episode's command stream; ``done`` / ``error`` tell how it ended."""

    def __init__(self, times_ns: np.ndarray, commands: np.ndarray,
                 joint_names: Sequence[str], **overrides) -> None:
        """Check the command stream and declare parameters (``overrides`` set their values)."""
        super().__init__('replay_node', parameter_overrides=[
            Parameter(k, value=v) for k, v in overrides.items()])
        times_ns = np.asarray(times_ns, dtype=np.int64)
        commands = np.asarray(commands, dtype=np.float64)
        if commands.ndim != 2 or commands.shape != (times_ns.size, len(joint_names)) \
                or times_ns.size == 0:
            raise ValueError(f'need (N, {len(joint_names)}) commands with N > 0 times, got '
                             f'{commands.shape} commands and {times_ns.size} times')
        if not np.all(np.isfinite(commands)) or np.any(np.diff(times_ns) < 0):
            raise ValueError('commands must be finite and their times ascending')
        self.command_topic = declare_param(
            self, 'command_topic', '/forward_position_controller/commands',
            'Topic the commands are published on.')
        self.command_interface = declare_param(
            self, 'command_interface', 'forward',
            'forward (std_msgs/Float64MultiArray) or trajectory (JointTrajectory).')
        self.speed = declare_param(self, 'speed', 1.0, 'Time scale: 2.0 plays twice as fast.',
                                   value_range=(0.01, 10.0))
        self.joint_state_topic = declare_param(self, 'joint_state_topic', '/joint_states',
                                               'State compared with the first command.')
        self.check_start_state = declare_param(
            self, 'check_start_state', True, 'Refuse to start far from the first command.')
        self.max_start_deviation = declare_param(
            self, 'max_start_deviation', 0.1,
            'Largest allowed |state - first command| per joint (rad, or m for fingers).')
        self.wait_timeout_s = declare_param(
            self, 'wait_timeout_s', 5.0, 'How long to wait for a subscriber / joint state (s).')
        if self.command_interface not in INTERFACES:
            raise ValueError(f'command_interface must be one of {INTERFACES}, got '
                             f'{self.command_interface!r}')
        self._times_ns = times_ns - times_ns[0]
        self._commands = commands
        self._names = list(joint_names)
        # A trajectory point should take about as long as the gap to the next command.
        gaps = np.diff(self._times_ns) * 1e-9
        self._point_time_s = float(np.median(gaps)) / self.speed if gaps.size else 0.05
        msg_type = Float64MultiArray if self.command_interface == 'forward' else JointTrajectory
        self._pub = self.create_publisher(msg_type, self.command_topic, COMMAND_QOS)
        self._state: Optional[np.ndarray] = None
        if self.check_start_state:
            self.create_subscription(JointState, self.joint_state_topic, self._on_state,
                                     STATE_SUB_QOS)
        self.sent = 0
        self.done = False
        self.error: Optional[str] = None
        self._created = time.monotonic()
        self._start: Optional[float] = None
        self._timer = self.create_timer(0.002, self._tick)

    def _on_state(self, msg: JointState) -> None:
        try:
            self._state = positions_by_name(msg, self._names)
        except ValueError as exc:
            self._fail(f'joint state on {self.joint_state_topic} is unusable: {exc}')

    def _fail(self, reason: str) -> None:
        self.error = reason
        self.done = True
        self._timer.cancel()
        self.get_logger().error(reason)

    def _ready(self) -> bool:
        """Return True once a subscriber (and a sane start state) is there."""
        waited = time.monotonic() - self._created
        if self._pub.get_subscription_count() == 0:
            if waited > self.wait_timeout_s:
                self._fail(f'no subscriber on {self.command_topic} after '
                           f'{self.wait_timeout_s:g} s')
            return False
        if not self.check_start_state:
            return True
        if self._state is None:
            if waited > self.wait_timeout_s:
                self._fail(f'no joint state on {self.joint_state_topic} after '
                           f'{self.wait_timeout_s:g} s (disable check_start_state to play '
                           'without one)')
            return False
        deviation = np.abs(self._state - self._commands[0])
        worst = int(np.argmax(deviation))
        if deviation[worst] > self.max_start_deviation:
            self._fail(f'{self._names[worst]} is {deviation[worst]:.3f} from the first command '
                       f'(limit max_start_deviation={self.max_start_deviation:g}); move the '
                       'arm to the episode start first')
            return False
        return True

    def _tick(self) -> None:
        if self.done:
            return
        if self._start is None:
            if not self._ready():
                return
            self._start = time.monotonic()
            self.get_logger().info(f'replaying {len(self._commands)} commands on '
                                   f'{self.command_topic}')
        elapsed_ns = (time.monotonic() - self._start) * self.speed * 1e9
        while self.sent < len(self._commands) and self._times_ns[self.sent] <= elapsed_ns:
            values = self._commands[self.sent]
            if self.command_interface == 'forward':
                self._pub.publish(command_msg(values))
            else:
                self._pub.publish(trajectory_msg(self._names, values, self._point_time_s))
            self.sent += 1
        if self.sent == len(self._commands):
            self.done = True
            self._timer.cancel()


def replay(times_ns: np.ndarray, commands: np.ndarray, joint_names: Sequence[str],
           **parameters) -> int:
    """Play commands over ROS 2 (initialising rclpy if needed); return how many were sent.

    ``parameters`` are the node's parameters. Raises RuntimeError when the node refuses or
    gives up, with the reason.
    """
    owns_context = not rclpy.ok()
    if owns_context:
        rclpy.init()
    node = None
    try:
        node = ReplayNode(times_ns, commands, joint_names, **parameters)
        while rclpy.ok() and not node.done:
            rclpy.spin_once(node, timeout_sec=0.05)
        if node.error:
            raise RuntimeError(node.error)
        # Give reliable delivery of the last commands a moment before the node goes away.
        end = time.monotonic() + 0.2
        while time.monotonic() < end:
            rclpy.spin_once(node, timeout_sec=0.02)
        return node.sent
    finally:
        if node is not None:
            node.destroy_node()
        if owns_context and rclpy.ok():
            rclpy.shutdown()


def main(args: Optional[list] = None) -> int:
    """Run ``ros2 run lam_ros replay_node SOURCE --episode NAME``: ``lam-ros dataset replay``."""
    import sys

    from rclpy.utilities import remove_ros_args

    from lam_ros.cli import main as cli_main
    argv = remove_ros_args(sys.argv if args is None else args)[1:]
    return cli_main(['dataset', 'replay', *argv])


if __name__ == '__main__':
    raise SystemExit(main())
