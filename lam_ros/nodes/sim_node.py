"""
The PyBullet task behind the robot-side ROS interface of a ros2_control arm.

Publishes ``/joint_states`` (all joints), ``/object_pose``, ``/goal_pose`` (tasks with a goal),
``/task_success``, optionally cameras (``cameras``: the fixed ``scene`` camera, the ``wrist``
camera on the hand), each under its namespace from the robot description's
``topics.cameras`` (``/scene_camera/image_raw`` rgb8, ``/scene_camera/depth/image_raw`` 32FC1
m, ``/scene_camera/camera_info``; frame ids from ``frames.cameras``), and ``/clock``
(simulated time, for ``use_sim_time`` nodes).
Accepts ``/forward_position_controller/commands`` (Float64MultiArray, one value per joint in
the robot description's order) and ``/joint_trajectory_controller/joint_trajectory``
(JointTrajectory by joint name, linearly interpolated over ``time_from_start``).
``~/reset`` (std_srvs/Trigger) starts a new randomised episode; each episode's seed and
initial object / goal poses go out on ``~/scene`` (std_msgs/String, JSON, latched), which
``recorder_node`` stores in ``dataset.yaml``; setting the ``restore_seed`` parameter restarts
the episode of that seed (``lam-ros dataset replay`` does, to replay in the recorded scene).

One steady-clock timer runs at ``joint_state_rate_hz``; each tick asks
``lam_ros.sim.stream.SimClock`` how far the simulation owes the wall clock (times
``real_time_factor``), runs ``SimDriver`` there (at most two state periods per tick, so
commands are applied between short runs of physics) and publishes the samples that fell
due on the way, so 1 kHz state needs no 1 kHz physics timer. At ``real_time_factor`` 0
with ``lockstep`` (the default) the sim also waits, at each command period boundary, for the
command computed from the state it just published, so recorded episodes stay aligned however
much faster than real time the sim runs. The node only translates messages.
"""

from __future__ import annotations

from dataclasses import dataclass
import json
import random
import time
from typing import Any, Optional

from lam_ros.data.messages import seconds_to_ns, stamp_to_ns
from lam_ros.description import CameraConfig
from lam_ros.description.camera import DEFAULT_CAMERAS
from lam_ros.description.robot import load_robot
from lam_ros.nodes.common import (
    COMMAND_QOS, declare_config, IMAGE_PUB_QOS, message_class, MSG, run_node, STATE_PUB_QOS)
from lam_ros.sim import make_env
from lam_ros.sim.stream import (
    CAMERA_RATE_HZ, CommandRejected, POSE_RATE_HZ, Sample, sample_message, sim_topics, SimClock,
    SimDriver, SimStream, STATE_RATE_HZ)
from rcl_interfaces.msg import SetParametersResult
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock as ClockMsg
from std_msgs.msg import Float64MultiArray, String
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory


@dataclass
class SimNodeConfig:
    """ROS-side settings of the simulator node."""

    task: str = 'lift'
    """Task to simulate: lift or pick_place."""
    seed: int = 0
    """Seed of the first episode; after k resets the episode uses seed + k, so each scene can
    be restored from its seed; -1 draws a random seed per episode."""
    restore_seed: int = -1
    """Set at run time (ros2 param set /sim_node restore_seed N) to restart the episode of
    seed N, as lam-ros dataset replay does; -1: none."""
    joint_state_rate_hz: float = STATE_RATE_HZ
    """Rate of /joint_states and /clock (Hz of simulated time)."""
    physics_rate_hz: float = 240.0
    """PyBullet step rate (Hz); a whole multiple of 20 Hz. Joint states come at most once per
    physics step, so 1 kHz states need 1000 Hz physics."""
    real_time_factor: float = 1.0
    """Simulated seconds per wall second; 0 runs as fast as possible."""
    pose_rate_hz: float = POSE_RATE_HZ
    """Rate of /object_pose, /goal_pose and /task_success (Hz of simulated time)."""
    cameras: str = ''
    """Cameras to render and publish, comma-separated: scene (fixed, facing the table), wrist
    (on the hand); empty: none. Each gets image_raw (rgb8) and camera_info under its namespace
    (the robot description's topics.cameras)."""
    camera_width: int = CameraConfig.width
    """Image width of every camera (pixels)."""
    camera_height: int = CameraConfig.height
    """Image height of every camera (pixels)."""
    camera_rate_hz: float = CAMERA_RATE_HZ
    """Frame rate of every camera (Hz of simulated time)."""
    camera_depth: bool = False
    """Also publish each camera's 32FC1 depth image (m) on <namespace>/depth/image_raw."""
    clock_starts_at_wall_time: bool = True
    """Start the simulated clock at the wall time of start-up, so stamps of a real-time sim
    stay close to wall time for nodes without use_sim_time; False starts at 0."""
    max_catch_up_s: float = 0.25
    """When the sim falls further behind real time than this (s), it drops the backlog."""
    lockstep: bool = True
    """At real_time_factor 0 only: after publishing the first /clock at or past each command
    period boundary (ROS time), wait for a command before stepping on, so a command is
    applied at the simulated time of the state it was computed from, however late DDS or a
    loaded machine delivers it. Only while a node publishes commands; no effect at
    real_time_factor > 0."""
    command_rate_hz: float = 0.0
    """Rate of the commander's ticks for lockstep (Hz of simulated time); 0: the robot
    description's control rate. A use_sim_time commander's timer ticks on multiples of its
    period in ROS time, which is where the sim waits."""
    command_wait_s: float = 1.0
    """Longest wait for a command at a lockstep boundary (wall-clock s); when none comes the
    sim runs freely until the next command arrives, so a silent commander stalls nothing."""
    robot: str = ''
    """Description of the simulated arm (config/robots/<name>.yaml or a path); empty: the
    default robot. Its joints, frames and topics are what the node publishes."""
    base_frame: str = ''
    """Frame id of poses (the world origin of the sim); empty: the robot's base frame."""
    gui: bool = False
    """Open the PyBullet GUI window (needs a display)."""
    allow_partial_joints_goal: bool = False
    """Accept JointTrajectory goals naming only some joints, as joint_trajectory_controller's
    parameter of the same name; otherwise such goals are rejected."""

    def __post_init__(self) -> None:
        """Reject rates and factors the node cannot run with."""
        for name in ('joint_state_rate_hz', 'physics_rate_hz', 'pose_rate_hz',
                     'camera_rate_hz', 'max_catch_up_s', 'command_wait_s'):
            if not getattr(self, name) > 0:
                raise ValueError(f'{name} must be positive, got {getattr(self, name)}')
        names = self.camera_names
        unknown = [n for n in names if n not in DEFAULT_CAMERAS]
        if unknown or len(set(names)) != len(names):
            raise ValueError(f'cameras {self.cameras!r}: each of {list(DEFAULT_CAMERAS)} at most '
                             'once, comma-separated')
        if self.command_rate_hz < 0:
            raise ValueError(f"command_rate_hz must be >= 0 (0 = the robot's control rate), "
                             f'got {self.command_rate_hz}')
        if self.real_time_factor < 0:
            raise ValueError(f'real_time_factor must be >= 0 (0 = as fast as possible), got '
                             f'{self.real_time_factor}')

    @property
    def camera_names(self) -> list[str]:
        """Return the names in ``cameras``."""
        return [n.strip() for n in self.cameras.split(',') if n.strip()]


class SimNode(Node):
    """PyBullet arm + task exposed as /joint_states, controller topics and task topics."""

    def __init__(self, **kwargs) -> None:
        """Declare parameters, build the task and start the simulation timer."""
        super().__init__('sim_node', **kwargs)
        cfg = self.config = declare_config(self, SimNodeConfig())
        camera = {'enabled': True, 'width': cfg.camera_width, 'height': cfg.camera_height,
                  'depth': cfg.camera_depth, 'rate_hz': cfg.camera_rate_hz}
        self.env = make_env(cfg.task, physics_rate_hz=cfg.physics_rate_hz,
                            cameras={n: camera for n in cfg.camera_names},
                            camera_observations=False,
                            render_mode='human' if cfg.gui else None, robot=cfg.robot)
        if cfg.physics_rate_hz < cfg.joint_state_rate_hz:
            self.get_logger().warning(
                f'physics_rate_hz {cfg.physics_rate_hz} < joint_state_rate_hz '
                f'{cfg.joint_state_rate_hz}: joint states come at only {cfg.physics_rate_hz:g} Hz')
        self.episode = 0
        self.episode_seed = self._seed_of(0)
        self.env.reset(seed=self.episode_seed)
        stream = SimStream(self.env, cfg.joint_state_rate_hz, cfg.pose_rate_hz, cfg.camera_names)
        robot = load_robot(cfg.robot or None)
        self.base_frame = cfg.base_frame or robot.frames.base
        self.camera_frames = {n: robot.frames.camera_frame(n) for n in cfg.camera_names}
        topics = sim_topics(robot, cfg.camera_names)
        self.driver = SimDriver(self.env, stream, robot.joint_names)
        self.driver.allow_partial_joints_goal = cfg.allow_partial_joints_goal
        self.clock = SimClock(cfg.real_time_factor, cfg.max_catch_up_s)
        self.commands_rejected = 0
        self._last_reject: dict = {}
        self._wall = Clock(clock_type=ClockType.STEADY_TIME)
        self._offset_ns = seconds_to_ns(time.time()) if cfg.clock_starts_at_wall_time else 0
        self.pubs = {role: self.create_publisher(
            message_class(topics[role][1]), topics[role][0],
            IMAGE_PUB_QOS if '/' in role else STATE_PUB_QOS)
            for role in stream.roles()}
        self.clock_pub = self.create_publisher(ClockMsg, 'clock', STATE_PUB_QOS)
        self.command_subs = [
            self.create_subscription(Float64MultiArray, 'forward_position_controller/commands',
                                     self._on_forward_command, COMMAND_QOS),
            self.create_subscription(JointTrajectory,
                                     'joint_trajectory_controller/joint_trajectory',
                                     self._on_trajectory, COMMAND_QOS)]
        self.create_service(Trigger, '~/reset', self._on_reset)
        self.scene_pub = self.create_publisher(String, '~/scene', QoSProfile(
            depth=1, reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.TRANSIENT_LOCAL))
        self._publish_scene()
        self.add_on_set_parameters_callback(self._on_set_parameters)
        period_s = 1.0 / cfg.joint_state_rate_hz
        self.timer = self.create_timer(
            period_s / cfg.real_time_factor if cfg.real_time_factor > 0 else 0.0, self._tick,
            clock=self._wall)
        # Lockstep (real_time_factor 0): the sim pauses at each command period boundary
        # until a command arrives (the main timer is cancelled, a command resets it) or
        # until command_wait_s passes (the wait timer resets it).
        self.lockstep = cfg.lockstep and cfg.real_time_factor == 0
        self._command_period_ns = seconds_to_ns(
            1.0 / (cfg.command_rate_hz or robot.control_rate_hz))
        self._last_boundary = -1
        self._waiting = False
        self._commander_silent = False
        self.lockstep_waits = self.lockstep_timeouts = 0
        self._wait_timer = self.create_timer(cfg.command_wait_s, self._on_wait_timeout,
                                             clock=self._wall, autostart=False)
        self._publish(self.driver.due_now())
        self.get_logger().info(
            f'simulating {cfg.task} at {cfg.physics_rate_hz:g} Hz physics, joint states at '
            f'{cfg.joint_state_rate_hz:g} Hz, real_time_factor {cfg.real_time_factor:g}'
            + (f', cameras {cfg.camera_names} at {cfg.camera_width}x{cfg.camera_height} '
               f'{cfg.camera_rate_hz:g} Hz' if cfg.camera_names else ''))

    def _reject(self, err: CommandRejected) -> None:
        # Throttled per kind of fault, so a flood of one bad command hides no other fault.
        self.commands_rejected += 1
        now = time.monotonic()
        if now - self._last_reject.get(err.kind, -float('inf')) >= 1.0:
            self._last_reject[err.kind] = now
            self.get_logger().error(str(err))

    def _command_arrived(self) -> None:
        self._commander_silent = False
        if self._waiting:
            self._resume()

    def _resume(self) -> None:
        self._waiting = False
        self._wait_timer.cancel()
        self.timer.reset()

    def _on_wait_timeout(self) -> None:
        if self._waiting:
            self.lockstep_timeouts += 1
            self._commander_silent = True
            self._resume()
        else:
            self._wait_timer.cancel()

    def _wait_for_command(self, samples: list[Sample]) -> None:
        # A use_sim_time timer of period P ticks when /clock first reaches a multiple of P,
        # i.e. at the first joint state (each comes with a /clock) in a new period.
        boundary = self._last_boundary
        for sample in samples:
            if sample.role == 'joint_state':
                stamp_ns = self._offset_ns + seconds_to_ns(sample.t_s)
                boundary = max(boundary, stamp_ns // self._command_period_ns)
        crossed, self._last_boundary = boundary > self._last_boundary, boundary
        if not crossed or self._commander_silent or not any(
                sub.get_publisher_count() for sub in self.command_subs):
            return
        self._waiting = True
        self.lockstep_waits += 1
        self.timer.cancel()
        self._wait_timer.reset()

    def _on_forward_command(self, msg: Float64MultiArray) -> None:
        self._command_arrived()
        try:
            self.driver.command(msg.data)
        except CommandRejected as err:
            self._reject(err)

    def _on_trajectory(self, msg: JointTrajectory) -> None:
        self._command_arrived()
        stamp_ns = stamp_to_ns(msg.header.stamp)
        try:
            self.driver.follow(
                list(msg.joint_names), [list(p.positions) for p in msg.points],
                [stamp_to_ns(p.time_from_start) * 1e-9 for p in msg.points],
                (stamp_ns - self._offset_ns) * 1e-9 if stamp_ns > 0 else None)
        except CommandRejected as err:
            self._reject(err)

    def _seed_of(self, episode: int) -> int:
        if self.config.seed < 0:
            return random.SystemRandom().randrange(2 ** 31)
        return self.config.seed + episode

    def _start_episode(self, seed: int) -> str:
        self.episode_seed = seed
        self._publish(self.driver.reset(seed=seed))
        self._publish_scene()
        message = f'episode {self.episode} of {self.config.task} started (seed {seed})'
        self.get_logger().info(message)
        return message

    def _publish_scene(self) -> None:
        from lam_ros.data.recording.demos import scene_of
        scene = dict(scene_of(self.env, self.episode_seed), task=self.config.task,
                     episode=self.episode)
        self.scene_pub.publish(String(data=json.dumps(scene)))

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Any:
        self.episode += 1
        response.message = self._start_episode(self._seed_of(self.episode))
        response.success = True
        return response

    def _on_set_parameters(self, params: list) -> SetParametersResult:
        for param in params:
            if param.name != 'restore_seed' or param.value is None or param.value < 0:
                continue
            self.episode += 1
            self._start_episode(int(param.value))
        return SetParametersResult(successful=True)

    def _tick(self) -> None:
        # A late tick publishes every sample it owes, so the rates hold on average even when
        # the executor cannot wake up once per period.
        period_s = 1.0 / self.config.joint_state_rate_hz
        target, dropped = self.clock.target(self._wall.now().nanoseconds * 1e-9,
                                            self.driver.sim_s, period_s)
        # Catch up at most two periods per tick: commands that came during a stall are
        # applied between ticks, at the simulated time they arrived, not after a burst of
        # physics on stale targets (up to max_catch_up_s) that left them a burst behind.
        target = min(target, self.driver.sim_s + 2.0 * period_s)
        if dropped:
            self.get_logger().warning(
                f'simulation is more than {self.config.max_catch_up_s} s behind real time '
                f'x{self.config.real_time_factor:g}; dropping the backlog',
                throttle_duration_sec=5.0)
        samples = self.driver.run_until(target)
        self._publish(samples)
        if self.lockstep:
            self._wait_for_command(samples)

    def _publish(self, samples: list[Sample]) -> None:
        for sample in samples:
            stamp_ns = self._offset_ns + seconds_to_ns(sample.t_s)
            if sample.role == 'joint_state':
                self.clock_pub.publish(ClockMsg(clock=MSG.time(stamp_ns)))
            self.pubs[sample.role].publish(
                sample_message(MSG, sample, stamp_ns, self.base_frame, self.camera_frames))

    def destroy_node(self) -> None:
        """Close the simulation with the node."""
        if self.lockstep:
            self.get_logger().info(
                f'lockstep: waited for a command at {self.lockstep_waits} boundaries, '
                f'{self.lockstep_timeouts} timed out')
        self.env.close()
        super().destroy_node()


def main(args: Optional[list] = None) -> int:
    """Run the simulator node until shutdown."""
    return run_node(SimNode, args, configs=[('', SimNodeConfig())])


if __name__ == '__main__':
    raise SystemExit(main())
