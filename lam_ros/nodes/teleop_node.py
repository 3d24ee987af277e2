"""Teleoperation node: operator input -> joint commands on the robot's controller topic.

Sources (parameter ``source``):

- ``cartesian``: MoveIt Servo style ``geometry_msgs/TwistStamped`` on ``~/delta_twist_cmds``
  (frame ``panda_link0`` or empty = base, ``panda_grasptarget`` = tool) plus
  ``std_msgs/Float64`` on ``~/gripper_cmd`` (open fraction: 0 closed .. 1 open), integrated
  into a tool target and solved by IK on the robot URDF.
- ``keyboard``: the same, fed by keys read from the node's terminal (see
  ``lam_ros.teleop.keyboard.HELP_TEXT``).
- ``joy``: the same, fed by ``sensor_msgs/Joy`` from the standard ``joy`` node, with a
  dead-man button (``joy.*`` parameters, config/joy_teleop.yaml).
- ``leader``: a leader arm's ``JointState``, mapped by joint name, is the command.
- ``scripted``: ``ScriptedExpert`` plays the operator from ``/joint_states``,
  ``/object_pose`` (and ``/goal_pose``); a jump of the object (a new episode) restarts it.
  With ``expert_waits_for`` (a recorder's ``~/status``) it holds the arm until a recording
  runs, so every recorded demonstration begins at the reset pose.

Input older than ``command_timeout_s`` moves nothing: the last command is held. Every
command is clamped to the URDF position limits and to ``max_velocity_scale`` times the
URDF velocity limits before it is published, at ``rate_hz``, reliably.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import json
import sys
import time
from typing import Optional

from geometry_msgs.msg import PoseStamped, TwistStamped
import numpy as np
from rclpy.node import Node
from sensor_msgs.msg import JointState, Joy
from std_msgs.msg import Float64, Float64MultiArray, String
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from lam_ros.control.limits import load_urdf_limits
from lam_ros.nodes.common import (
    command_msg, COMMAND_QOS, declare_config, pose_from_msg, positions_by_name, run_node,
    STATE_SUB_QOS, trajectory_msg)
from lam_ros.sim.robot import JOINT_NAMES, panda_urdf_path
from lam_ros.teleop.joy import joy_to_command, JoyConfig
from lam_ros.teleop.keyboard import (
    EPISODE_KEYS, HELP_TEXT, KeyboardConfig, KeyboardTeleop, open_terminal)
from lam_ros.teleop.leader import LeaderConfig, LeaderMapping
from lam_ros.control.watchdog import InputWatch
from lam_ros.teleop.twist import TwistConfig

SOURCES = ('keyboard', 'joy', 'cartesian', 'leader', 'scripted')
INTERFACES = ('forward', 'trajectory')
DEFAULT_COMMAND_TOPICS = {'forward': '/forward_position_controller/commands',
                          'trajectory': '/joint_trajectory_controller/joint_trajectory'}


@dataclass
class TeleopNodeConfig:
    """ROS-side settings of the teleop node."""

    source: str = 'keyboard'
    """Operator: keyboard, joy, cartesian (twist topic), leader or scripted."""
    rate_hz: float = 20.0
    """Command publishing rate (Hz); recorded demonstrations carry actions at this rate."""
    command_interface: str = 'forward'
    """forward (Float64MultiArray, forward_command_controller) or trajectory (JointTrajectory)."""
    command_topic: str = ''
    """Command topic; empty picks the interface's ros2_control default."""
    joint_state_topic: str = '/joint_states'
    """Measured joint state of the robot."""
    joint_names: list[str] = field(default_factory=lambda: list(JOINT_NAMES))
    """Commanded joints, in command order (7 arm joints + finger for Cartesian sources)."""
    urdf_path: str = ''
    """Robot URDF for limits and IK; empty uses the Panda of pybullet_data."""
    command_timeout_s: float = 0.5
    """Input older than this (s) is stale: the arm holds its last command."""
    state_timeout_s: float = 0.5
    """Joint states older than this (s) are stale: the arm holds its last command."""
    max_velocity_scale: float = 1.0
    """Fraction (0..1] of the URDF velocity limits a command may move at."""
    trajectory_point_time_s: float = 0.1
    """time_from_start of each JointTrajectory point (s), trajectory interface only."""
    base_frame: str = 'panda_link0'
    """Twist frame meaning the robot base (an empty frame_id means the same)."""
    ee_frame: str = 'panda_grasptarget'
    """Twist frame meaning the tool itself."""
    twist_topic: str = '~/delta_twist_cmds'
    """TwistStamped input (cartesian source)."""
    gripper_topic: str = '~/gripper_cmd'
    """Float64 gripper open fraction, 0 closed .. 1 open (cartesian source)."""
    joy_topic: str = '/joy'
    """sensor_msgs/Joy input (joy source)."""
    leader_topic: str = '/leader/joint_states'
    """Leader arm JointState (leader source)."""
    object_pose_topic: str = '/object_pose'
    """Object pose the scripted expert grasps."""
    goal_pose_topic: str = '/goal_pose'
    """Goal pose of pick_place for the scripted expert."""
    task: str = 'lift'
    """Task the scripted expert performs: lift or pick_place."""
    expert_noise_std_m: float = 0.01
    """Demonstration variation of the scripted expert (m)."""
    expert_seed: int = -1
    """Seed of the expert's variations; -1 for random."""
    expert_waits_for: str = ''
    """Recorder status topic (std_msgs/String JSON, e.g. /recorder_node/status): the scripted
    expert holds the arm until it reports a recording; empty: the expert never waits."""
    reset_jump_m: float = 0.05
    """An object jump larger than this between two poses (m) means a new episode."""
    episode_services: list[str] = field(default_factory=lambda: [
        '/recorder_node/start_episode', '/recorder_node/stop_episode',
        '/recorder_node/discard_episode', '/sim_node/reset'])
    """Trigger services of keyboard keys 1 (start), 2 (stop), 3 (discard), 0 (new scene)."""


class TeleopNode(Node):
    """Turns one operator source into a stream of safe joint commands."""

    def __init__(self, **kwargs) -> None:
        """Declare parameters, build the source's core objects and start the command timer."""
        super().__init__('teleop_node', **kwargs)
        cfg = self.config = declare_config(self, TeleopNodeConfig())
        if cfg.source not in SOURCES or cfg.command_interface not in INTERFACES:
            raise ValueError(f'source must be one of {SOURCES} and command_interface one of '
                             f'{INTERFACES}; got {cfg.source!r}, {cfg.command_interface!r}')
        if not 0 < cfg.max_velocity_scale <= 1 or cfg.rate_hz <= 0:
            raise ValueError('max_velocity_scale must be in (0, 1] and rate_hz > 0')
        self.limits = load_urdf_limits(cfg.urdf_path or panda_urdf_path(), cfg.joint_names)
        self.dt_s = 1.0 / cfg.rate_hz
        self.input_watch = InputWatch(cfg.command_timeout_s)
        self.state_watch = InputWatch(cfg.state_timeout_s)
        self.q: Optional[np.ndarray] = None
        self.last_command: Optional[np.ndarray] = None
        self.published = 0
        self._needs_sync = True
        self._step_s = self.dt_s
        self._last_tick_s: Optional[float] = None
        self._twist = (np.zeros(3), np.zeros(3), 'base')
        self._gripper: Optional[float] = None
        self._leader_cmd: Optional[np.ndarray] = None
        self._poses: dict = {}
        self._terminal = None
        self._make_source(cfg)
        msg_type = Float64MultiArray if cfg.command_interface == 'forward' else JointTrajectory
        self.pub = self.create_publisher(
            msg_type, cfg.command_topic or DEFAULT_COMMAND_TOPICS[cfg.command_interface],
            COMMAND_QOS)
        self.create_subscription(JointState, cfg.joint_state_topic, self._on_state,
                                 STATE_SUB_QOS)
        self.create_service(Trigger, '~/reset', self._on_reset)
        self.timer = self.create_timer(self.dt_s, self._tick)
        self.get_logger().info(f'teleop from {cfg.source} at {cfg.rate_hz:g} Hz to '
                               f'{self.pub.topic_name}')

    def _make_source(self, cfg: TeleopNodeConfig) -> None:
        if cfg.source in ('keyboard', 'joy', 'cartesian', 'scripted'):
            from lam_ros.sim.kinematics import PandaKinematics
            self.kinematics = PandaKinematics(cfg.urdf_path or None)
        if cfg.source in ('keyboard', 'joy', 'cartesian'):
            from lam_ros.teleop.cartesian import CartesianTeleop
            self.cartesian = CartesianTeleop(self.kinematics, self.limits,
                                             declare_config(self, TwistConfig(), 'twist.'))
            self.create_subscription(TwistStamped, cfg.twist_topic, self._on_twist, COMMAND_QOS)
            self.create_subscription(Float64, cfg.gripper_topic, self._on_gripper, COMMAND_QOS)
        if cfg.source == 'keyboard':
            self.keyboard = KeyboardTeleop(declare_config(self, KeyboardConfig(), 'keyboard.'))
            self._terminal = open_terminal()
            if self._terminal is None:
                self.get_logger().error(
                    'no terminal to read keys from: run `ros2 run lam_ros teleop_node '
                    '--ros-args -p source:=keyboard` in a terminal (twists on '
                    f'{cfg.twist_topic} still work)')
            else:
                self._terminal.__enter__()
                print(HELP_TEXT, file=sys.stderr)
            if len(cfg.episode_services) != len(EPISODE_KEYS):
                raise ValueError(f'episode_services needs {len(EPISODE_KEYS)} Trigger service '
                                 'names: start, stop, discard, new scene')
            self._episode_clients = {
                action: self.create_client(Trigger, name)
                for action, name in zip(EPISODE_KEYS.values(), cfg.episode_services) if name}
        elif cfg.source == 'joy':
            self.joy_config = declare_config(self, JoyConfig(), 'joy.')
            self.create_subscription(Joy, cfg.joy_topic, self._on_joy, STATE_SUB_QOS)
        elif cfg.source == 'leader':
            self.leader = LeaderMapping(declare_config(
                self, LeaderConfig(follower_joints=list(cfg.joint_names)), 'leader.',
                skip=('follower_joints',)))
            self.create_subscription(JointState, cfg.leader_topic, self._on_leader,
                                     STATE_SUB_QOS)
        elif cfg.source == 'scripted':
            from lam_ros.sim.expert import ExpertConfig, ScriptedExpert
            self.expert = ScriptedExpert(
                cfg.task, noise_std=cfg.expert_noise_std_m,
                seed=None if cfg.expert_seed < 0 else cfg.expert_seed,
                config=ExpertConfig(control_rate_hz=cfg.rate_hz), kinematics=self.kinematics)
            self.create_subscription(PoseStamped, cfg.object_pose_topic,
                                     lambda m: self._on_pose('object_pose', m), STATE_SUB_QOS)
            self.create_subscription(PoseStamped, cfg.goal_pose_topic,
                                     lambda m: self._on_pose('goal_pose', m), STATE_SUB_QOS)
            self._recording = not cfg.expert_waits_for
            if cfg.expert_waits_for:
                self.create_subscription(String, cfg.expert_waits_for, self._on_recorder, 10)

    def _on_recorder(self, msg: String) -> None:
        try:
            self._recording = json.loads(msg.data).get('state') == 'recording'
        except (ValueError, AttributeError):
            self.get_logger().error(f'{self.config.expert_waits_for} is not recorder status '
                                    'JSON', throttle_duration_sec=2.0)

    def _now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    # ---- inputs ----

    def _on_state(self, msg: JointState) -> None:
        try:
            self.q = positions_by_name(msg, self.config.joint_names)
        except ValueError as err:
            self.get_logger().error(f'ignoring joint state: {err}', throttle_duration_sec=2.0)
            return
        self.state_watch.touch(self._now_s())

    def _on_twist(self, msg: TwistStamped) -> None:
        frame = msg.header.frame_id.lstrip('/')
        if frame in ('', self.config.base_frame):
            kind = 'base'
        elif frame == self.config.ee_frame:
            kind = 'ee'
        else:
            self.get_logger().error(
                f'ignoring twist in frame {frame!r}; expected {self.config.base_frame!r} (or '
                f'empty) or {self.config.ee_frame!r}', throttle_duration_sec=2.0)
            return
        t = msg.twist
        lin = np.array([t.linear.x, t.linear.y, t.linear.z])
        ang = np.array([t.angular.x, t.angular.y, t.angular.z])
        if not np.all(np.isfinite(np.r_[lin, ang])):
            self.get_logger().error('ignoring twist with NaN/Inf', throttle_duration_sec=2.0)
            return
        self._twist = (lin, ang, kind)
        self.input_watch.touch(self._now_s())

    def _on_gripper(self, msg: Float64) -> None:
        if not np.isfinite(msg.data):
            self.get_logger().error('ignoring NaN/Inf gripper command; expected an open '
                                    'fraction 0 (closed) .. 1 (open)')
            return
        self._gripper = float(np.clip(msg.data, 0.0, 1.0))

    def _on_joy(self, msg: Joy) -> None:
        cmd = joy_to_command(msg.axes, msg.buttons, self.joy_config)
        if cmd.gripper_open_fraction is not None:
            self._gripper = cmd.gripper_open_fraction
        self._twist = (cmd.linear_mps, cmd.angular_radps, 'base')
        if cmd.enabled:
            self.input_watch.touch(self._now_s())
        else:
            self.input_watch.clear()

    def _on_leader(self, msg: JointState) -> None:
        try:
            self._leader_cmd = self.leader.map(msg.name, msg.position)
        except ValueError as err:
            self.get_logger().error(f'ignoring leader state: {err}', throttle_duration_sec=2.0)
            return
        self.input_watch.touch(self._now_s())

    def _on_pose(self, key: str, msg: PoseStamped) -> None:
        try:
            pose = pose_from_msg(msg)
        except ValueError as err:
            self.get_logger().error(f'ignoring {key}: {err}', throttle_duration_sec=2.0)
            return
        old = self._poses.get(key)
        if key == 'object_pose' and old is not None and \
                np.linalg.norm(pose[:3] - old[0][:3]) > self.config.reset_jump_m:
            self.get_logger().info('object jumped: new episode, restarting the expert')
            self._resync()
        self._poses[key] = (pose, self._now_s())

    def _call_episode_service(self, action: str) -> None:
        client = self._episode_clients.get(action)
        if client is None or not client.service_is_ready():
            self.get_logger().warning(f'no {action} service ({self.config.episode_services})')
            return

        def done(future) -> None:
            result = future.result()
            self.get_logger().info(f'{action}: {result.message}')
            if action == 'reset' and result.success:
                self._resync()
        client.call_async(Trigger.Request()).add_done_callback(done)

    def _resync(self) -> None:
        # Wait for a joint state from after the change before anchoring again.
        self._needs_sync = True
        self.q = None
        self.input_watch.clear()
        if hasattr(self, 'keyboard'):
            self.keyboard.stop()

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response):
        self._resync()
        response.success, response.message = True, 'teleop re-anchored at the next joint state'
        return response

    # ---- command loop ----

    def _sync(self) -> None:
        self.last_command = self.limits.clamp_position(self.q)
        if hasattr(self, 'cartesian'):
            self.cartesian.sync(self.q)
            self._twist = (np.zeros(3), np.zeros(3), 'base')
            self._gripper = None
        if hasattr(self, 'keyboard'):  # the gripper keys resume from the measured fingers
            self.keyboard.gripper_open_fraction = float(
                np.clip(self.q[-1] / self.cartesian.finger_open_m, 0.0, 1.0))
        if hasattr(self, 'expert'):
            self.expert.reset()
        self._leader_cmd = None
        self._needs_sync = False

    def _poses_fresh(self, now: float) -> bool:
        keys = ['object_pose'] + (['goal_pose'] if self.config.task == 'pick_place' else [])
        return all(k in self._poses and now - self._poses[k][1] <= self.config.state_timeout_s
                   for k in keys)

    def _next_command(self, now: float) -> np.ndarray:
        source = self.config.source
        if source == 'keyboard':
            if self._terminal is not None:
                for key in self._terminal.read_keys(0.0):
                    if key in EPISODE_KEYS:
                        self._call_episode_service(EPISODE_KEYS[key])
                    else:
                        self.keyboard.on_key(key, time.monotonic())
            lin, ang = self.keyboard.twist(time.monotonic())
            if not (np.any(lin) or np.any(ang)) and self.input_watch.fresh(now):
                lin, ang, frame = self._twist
            else:
                frame = 'base'
            if self._gripper is not None:  # a gripper topic message overrides the keys
                self.keyboard.gripper_open_fraction, self._gripper = self._gripper, None
            return self.cartesian.step(lin, ang, self._step_s,
                                       self.keyboard.gripper_open_fraction, frame)
        if source in ('joy', 'cartesian'):
            lin, ang, frame = self._twist
            if not self.input_watch.fresh(now):
                lin, ang = np.zeros(3), np.zeros(3)
            return self.cartesian.step(lin, ang, self._step_s, self._gripper, frame)
        if source == 'leader':
            fresh = self.input_watch.fresh(now) and self._leader_cmd is not None
            return self._leader_cmd if fresh else self.last_command
        if not (self._recording and self.state_watch.fresh(now) and self._poses_fresh(now)):
            return self.last_command
        obs = {'joint_pos': self.q, 'object_pose': self._poses['object_pose'][0]}
        if 'goal_pose' in self._poses:
            obs['goal_pose'] = self._poses['goal_pose'][0]
        return self.expert.act(obs)

    def _tick(self) -> None:
        if self.q is None:
            return
        now = self._now_s()
        # Integrate over the time that really passed, so a late tick does not slow the arm,
        # but never over more than two periods, so a stall does not make it jump.
        elapsed = self.dt_s if self._last_tick_s is None else now - self._last_tick_s
        self._step_s = float(np.clip(elapsed, 0.25 * self.dt_s, 2.0 * self.dt_s))
        self._last_tick_s = now
        if self._needs_sync:
            self._sync()
        if not self.state_watch.fresh(now):
            cmd = self.last_command  # the robot went quiet: move nothing
        else:
            try:
                cmd = self._next_command(now)
            except ValueError as err:
                self.get_logger().error(f'holding the arm: {err}', throttle_duration_sec=2.0)
                cmd = self.last_command
        cmd = self.limits.clamp_position(cmd)
        cmd = self.limits.clamp_velocity(cmd, self.last_command, self._step_s,
                                         self.config.max_velocity_scale)
        self.last_command = cmd
        if self.config.command_interface == 'forward':
            self.pub.publish(command_msg(cmd))
        else:
            self.pub.publish(trajectory_msg(self.config.joint_names, cmd,
                                            self.config.trajectory_point_time_s))
        self.published += 1

    def destroy_node(self) -> None:
        """Restore the terminal and release the kinematics client."""
        if self._terminal is not None:
            self._terminal.__exit__(None, None, None)
        if hasattr(self, 'kinematics'):
            self.kinematics.close()
        super().destroy_node()


def main(args: Optional[list] = None) -> int:
    """Run the teleop node until shutdown."""
    return run_node(TeleopNode, args)


if __name__ == '__main__':
    raise SystemExit(main())
