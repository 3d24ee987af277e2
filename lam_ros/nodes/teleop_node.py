"""
Teleoperation node: operator input -> joint commands on the robot's controller topic.

Sources (parameter ``source``, see ``lam_ros.teleop.sources``):

- ``cartesian``: MoveIt Servo style ``geometry_msgs/TwistStamped`` on ``~/delta_twist_cmds``
  (frame = robot base or empty, or the tool frame) plus ``std_msgs/Float64`` on
  ``~/gripper_cmd`` (open fraction: 0 closed .. 1 open), solved by IK on the robot URDF.
- ``keyboard``: the same, fed by keys read from the node's terminal (see
  ``lam_ros.teleop.keyboard.HELP_TEXT``).
- ``joy``: the same, fed by ``sensor_msgs/Joy`` from the standard ``joy`` node, with a
  dead-man button (``joy.*`` parameters, config/joy_teleop.yaml).
- ``leader``: a leader arm's ``JointState``, mapped by joint name, is the command.
- ``scripted``: ``ScriptedExpert`` plays the operator from the joint state and the task's
  poses; a jump of the object (a new episode) restarts it. With ``expert_waits_for`` (a
  recorder's ``~/status``) it holds the arm until a recording runs.

Every command passes ``lam_ros.control.gate.CommandGate`` (limits, velocity, stale input and
state, NaN) inside ``lam_ros.teleop.session.TeleopSession``; this node only translates
messages and publishes at ``rate_hz`` (default: the robot description's control rate).
"""

from __future__ import annotations

import sys
from typing import Any, Optional

from geometry_msgs.msg import PoseStamped, TwistStamped
from lam_ros.control.gate import CommandGate
from lam_ros.nodes.common import (
    COMMAND_QOS, CommandOutput, declare_config, pose_from_msg, positions_by_name, run_node,
    STATE_SUB_QOS)
from lam_ros.teleop.joy import joy_to_command, JoyConfig
from lam_ros.teleop.keyboard import HELP_TEXT, KeyboardConfig, open_terminal
from lam_ros.teleop.leader import LeaderConfig
from lam_ros.teleop.session import (
    build_source, CARTESIAN_SOURCES, close_source, TeleopConfig, TeleopSession)
from lam_ros.teleop.twist import TwistConfig
from rclpy.node import Node
from sensor_msgs.msg import JointState, Joy
from std_msgs.msg import Float64, String
from std_srvs.srv import Trigger

EPISODE_ACTIONS = ('start', 'stop', 'discard', 'reset')


class TeleopNode(Node):
    """Turns one operator source into a stream of safe joint commands."""

    def __init__(self, **kwargs: Any) -> None:
        """Declare parameters, build the session and start the command timer."""
        super().__init__('teleop_node', **kwargs)
        cfg = self.config = declare_config(self, TeleopConfig()).resolved()
        sub = {}
        if cfg.source in CARTESIAN_SOURCES:
            sub['twist'] = declare_config(self, TwistConfig.for_robot(cfg.description),
                                          'twist.')
        if cfg.source in ('keyboard', 'joy', 'leader'):
            defaults = {'keyboard': KeyboardConfig(), 'joy': JoyConfig(),
                        'leader': LeaderConfig(follower_joints=list(cfg.joint_names))}
            sub[cfg.source] = declare_config(self, defaults[cfg.source], cfg.source + '.',
                                             skip=('follower_joints',))
        limits = cfg.description.joint_limits(cfg.joint_names)
        self.source = build_source(cfg, limits, sub)
        self.session = TeleopSession(self.source, CommandGate(limits, cfg.rate_hz,
                                                              cfg.gate_config()))
        self.joy_config = sub.get('joy')
        self.published = 0
        self._terminal = None
        self._wire_source(cfg)
        self.output = CommandOutput(self, cfg.command_interface, cfg.command_topic,
                                    cfg.joint_names, cfg.trajectory_point_time_s)
        self.create_subscription(JointState, cfg.joint_state_topic, self._on_state,
                                 STATE_SUB_QOS)
        self.create_service(Trigger, '~/reset', self._on_reset)
        self.timer = self.create_timer(1.0 / cfg.rate_hz, self._tick)
        self.get_logger().info(f'teleop from {cfg.source} at {cfg.rate_hz:g} Hz to '
                               f'{self.output.topic}')

    def _wire_source(self, cfg: TeleopConfig) -> None:
        """Subscribe to the chosen source's inputs."""
        src = self.source
        if cfg.source in CARTESIAN_SOURCES:
            self.create_subscription(TwistStamped, cfg.twist_topic, self._on_twist, COMMAND_QOS)
            self.create_subscription(Float64, cfg.gripper_topic, self._guard(
                lambda m: src.on_gripper(m.data)), COMMAND_QOS)
        if cfg.source == 'keyboard':
            self._terminal = open_terminal()
            if self._terminal is None:
                self.get_logger().error(
                    'no terminal to read keys from: run `ros2 run lam_ros teleop_node '
                    '--ros-args -p source:=keyboard` in a terminal (twists on '
                    f'{cfg.twist_topic} still work)')
            else:
                self._terminal.__enter__()
                print(HELP_TEXT, file=sys.stderr)
            self._episode_clients = {
                action: self.create_client(Trigger, name)
                for action, name in zip(EPISODE_ACTIONS, cfg.episode_services) if name}
        elif cfg.source == 'joy':
            self.create_subscription(Joy, cfg.joy_topic, lambda m: src.on_joy(
                self._now_s(), joy_to_command(m.axes, m.buttons, self.joy_config)),
                STATE_SUB_QOS)
        elif cfg.source == 'leader':
            self.create_subscription(JointState, cfg.leader_topic, self._guard(
                lambda m: src.on_leader(self._now_s(), m.name, m.position)), STATE_SUB_QOS)
        elif cfg.source == 'scripted':
            for key in src.pose_keys:
                topic = getattr(cfg, f'{key}_topic')
                self.create_subscription(PoseStamped, topic, self._guard(
                    lambda m, k=key: self._on_pose(k, m)), STATE_SUB_QOS)
            if cfg.expert_waits_for:
                self.create_subscription(String, cfg.expert_waits_for, self._guard(
                    lambda m: src.on_recorder_status(m.data)), 10)

    def _now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _guard(self, handler: Any) -> Any:
        """Wrap a message handler so bad input is logged (throttled) and ignored."""
        def handle(msg: Any) -> None:
            try:
                handler(msg)
            except ValueError as err:
                self.get_logger().error(f'ignoring input: {err}', throttle_duration_sec=2.0)
        return handle

    def _on_state(self, msg: JointState) -> None:
        try:
            q = positions_by_name(msg, self.config.joint_names)
        except ValueError as err:
            self.get_logger().error(f'ignoring joint state: {err}', throttle_duration_sec=2.0)
            return
        if not self.session.on_state(self._now_s(), q):
            self.get_logger().error(f'ignoring joint state: {self.session.gate.reason}',
                                    throttle_duration_sec=2.0)

    def _on_twist(self, msg: TwistStamped) -> None:
        t = msg.twist
        self._guard(lambda _: self.source.on_twist(
            self._now_s(), msg.header.frame_id, [t.linear.x, t.linear.y, t.linear.z],
            [t.angular.x, t.angular.y, t.angular.z]))(msg)

    def _on_pose(self, key: str, msg: PoseStamped) -> None:
        if self.source.on_pose(self._now_s(), key, pose_from_msg(msg)):
            self.get_logger().info('object jumped: new episode, restarting the expert')
            self.session.resync()

    def _call_episode_service(self, action: str) -> None:
        client = self._episode_clients.get(action)
        if client is None or not client.service_is_ready():
            self.get_logger().warning(f'no {action} service ({self.config.episode_services})')
            return

        def done(future: Any) -> None:
            result = future.result()
            self.get_logger().info(f'{action}: {result.message}')
            if action == 'reset' and result.success:
                self.session.resync()
        client.call_async(Trigger.Request()).add_done_callback(done)

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Any:
        self.session.resync()
        response.success, response.message = True, 'teleop re-anchored at the next joint state'
        return response

    def _tick(self) -> None:
        if self._terminal is not None:
            for action in self.source.on_keys(self._terminal.read_keys(0.0)):
                self._call_episode_service(action)
        command = self.session.tick(self._now_s())
        if self.session.error:
            self.get_logger().error(f'holding the arm: {self.session.error}',
                                    throttle_duration_sec=2.0)
        if command is not None:
            self.output.publish(command)
            self.published += 1

    def destroy_node(self) -> None:
        """Restore the terminal and release the kinematics client."""
        if self._terminal is not None:
            self._terminal.__exit__(None, None, None)
        close_source(self.source)
        super().destroy_node()


def main(args: Optional[list] = None) -> int:
    """Run the teleop node until shutdown."""
    from lam_ros.description import load_robot
    joints = list(load_robot().joint_names)  # the node's default: the robot's joints
    return run_node(TeleopNode, args, configs=[
        ('', TeleopConfig()), ('twist.', TwistConfig()), ('keyboard.', KeyboardConfig()),
        ('joy.', JoyConfig()),
        ('leader.', LeaderConfig(follower_joints=joints), ('follower_joints',))])


if __name__ == '__main__':
    raise SystemExit(main())
