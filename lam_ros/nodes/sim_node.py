"""The PyBullet task behind the robot-side ROS interface of a ros2_control arm.

Publishes ``/joint_states`` (9 joints), ``/object_pose``, ``/goal_pose`` (pick_place),
``/task_success``, optionally ``/camera/image_raw`` (+ ``/camera/depth/image_raw``) and
``/camera/camera_info``, and ``/clock`` (simulated time, for ``use_sim_time`` nodes).
Accepts ``/forward_position_controller/commands`` (Float64MultiArray, 8 values in
``JOINT_NAMES`` order) and ``/joint_trajectory_controller/joint_trajectory``
(JointTrajectory by joint name, linearly interpolated over ``time_from_start``).
``~/reset`` (std_srvs/Trigger) starts a new randomised episode.

One steady-clock timer runs at ``joint_state_rate_hz``; each tick steps as many physics
steps as the simulated clock owes the wall clock (times ``real_time_factor``), then
publishes one joint state, so 1 kHz state needs no 1 kHz physics timer.
"""

from __future__ import annotations

from dataclasses import dataclass
import time
from typing import Optional, Sequence

import numpy as np
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from builtin_interfaces.msg import Time
from geometry_msgs.msg import PoseStamped
from rosgraph_msgs.msg import Clock as ClockMsg
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import Bool, Float64MultiArray
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from lam_ros.nodes.common import (
    camera_info_msg, COMMAND_QOS, declare_config, depth_msg, image_msg, IMAGE_PUB_QOS,
    joint_state_msg, pose_msg, run_node, stamp_s, STATE_PUB_QOS, time_msg)
from lam_ros.sim import make_env
from lam_ros.sim.robot import JOINT_NAMES


@dataclass
class SimNodeConfig:
    """ROS-side settings of the simulator node."""

    task: str = 'lift'
    """Task to simulate: lift or pick_place."""
    seed: int = 0
    """Seed of the first episode (later resets continue its random stream); -1 for random."""
    joint_state_rate_hz: float = 100.0
    """Rate of /joint_states and /clock (Hz of simulated time)."""
    physics_rate_hz: float = 240.0
    """PyBullet step rate (Hz); a whole multiple of 20 Hz. Joint states come at most once per
    physics step, so 1 kHz states need 1000 Hz physics."""
    real_time_factor: float = 1.0
    """Simulated seconds per wall second; 0 runs as fast as possible."""
    pose_rate_hz: float = 30.0
    """Rate of /object_pose, /goal_pose and /task_success (Hz of simulated time)."""
    camera_enabled: bool = False
    """Render and publish the workspace camera."""
    camera_width: int = 84
    """Camera image width (pixels)."""
    camera_height: int = 84
    """Camera image height (pixels)."""
    camera_rate_hz: float = 10.0
    """Camera frame rate (Hz of simulated time)."""
    camera_depth: bool = False
    """Also publish a 32FC1 depth image (m) on /camera/depth/image_raw."""
    clock_starts_at_wall_time: bool = True
    """Start the simulated clock at the wall time of start-up, so stamps of a real-time sim
    stay close to wall time for nodes without use_sim_time; False starts at 0."""
    max_catch_up_s: float = 0.25
    """When the sim falls further behind real time than this (s), it drops the backlog."""
    base_frame: str = 'panda_link0'
    """Frame id of poses (the robot base, the world origin of the sim)."""
    camera_frame: str = 'sim_camera_optical_frame'
    """Frame id of camera images."""
    gui: bool = False
    """Open the PyBullet GUI window (needs a display)."""

    def __post_init__(self) -> None:
        """Reject rates and factors the node cannot run with."""
        for name in ('joint_state_rate_hz', 'physics_rate_hz', 'pose_rate_hz',
                     'camera_rate_hz', 'max_catch_up_s'):
            if not getattr(self, name) > 0:
                raise ValueError(f'{name} must be positive, got {getattr(self, name)}')
        if self.real_time_factor < 0:
            raise ValueError(f'real_time_factor must be >= 0 (0 = as fast as possible), got '
                             f'{self.real_time_factor}')


class TrajectoryFollower:
    """Linear interpolation of joint targets through timed waypoints (ROS-free)."""

    def __init__(self) -> None:
        """Start idle."""
        self._times: Optional[np.ndarray] = None
        self._points: Optional[np.ndarray] = None

    @property
    def active(self) -> bool:
        """True while a trajectory is being followed."""
        return self._times is not None

    def start(self, start_s: float, q_now: Sequence[float], times_s: Sequence[float],
              points: np.ndarray) -> None:
        """Follow ``points`` (k, n) reached at ``start_s + times_s``, beginning at ``q_now``."""
        times = np.asarray(times_s, dtype=np.float64)
        if times.size == 0 or np.any(np.diff(times) <= 0) or times[0] < 0:
            raise ValueError('trajectory points need strictly increasing, non-negative '
                             f'time_from_start; got {times.tolist()}')
        self._times = np.r_[0.0, times] + start_s
        self._points = np.vstack([np.asarray(q_now, dtype=np.float64), points])

    def stop(self) -> None:
        """Abandon the current trajectory."""
        self._times = self._points = None

    def sample(self, t_s: float) -> Optional[np.ndarray]:
        """Return the target at ``t_s`` (None when idle); finishing leaves the last point."""
        if self._times is None or self._points is None:
            return None
        if t_s >= self._times[-1]:
            last = self._points[-1].copy()
            self.stop()
            return last
        if t_s <= self._times[0]:
            return self._points[0].copy()
        i = int(np.searchsorted(self._times, t_s, side='right')) - 1
        alpha = (t_s - self._times[i]) / (self._times[i + 1] - self._times[i])
        return (1 - alpha) * self._points[i] + alpha * self._points[i + 1]


class SimNode(Node):
    """PyBullet arm + task exposed as /joint_states, controller topics and task topics."""

    def __init__(self, **kwargs) -> None:
        """Declare parameters, build the task and start the simulation timer."""
        super().__init__('sim_node', **kwargs)
        cfg = self.config = declare_config(self, SimNodeConfig())
        camera = {'enabled': cfg.camera_enabled, 'width': cfg.camera_width,
                  'height': cfg.camera_height, 'depth': cfg.camera_depth}
        self.env = make_env(cfg.task, physics_rate_hz=cfg.physics_rate_hz, camera=camera,
                            render_mode='human' if cfg.gui else None)
        self.dt_s = 1.0 / cfg.physics_rate_hz
        if cfg.physics_rate_hz < cfg.joint_state_rate_hz:
            self.get_logger().warning(
                f'physics_rate_hz {cfg.physics_rate_hz} < joint_state_rate_hz '
                f'{cfg.joint_state_rate_hz}: joint states come at only {cfg.physics_rate_hz:g} Hz')
        self.env.reset(seed=None if cfg.seed < 0 else cfg.seed)
        self.targets = self.env.joint_state()[1][:len(JOINT_NAMES)].copy()
        self.episode = 0
        self.trajectory = TrajectoryFollower()
        self.commands_rejected = 0
        self._last_reject: dict = {}
        self._wall = Clock(clock_type=ClockType.STEADY_TIME)
        self._clock_offset_s = time.time() if cfg.clock_starts_at_wall_time else 0.0
        self._sim_s = 0.0  # simulated seconds since start-up, across episodes
        self._next_state_s = 0.0
        self._last_state_s = -1.0
        self._anchor: Optional[tuple] = None  # (wall s, sim s), set on the first tick
        self._next_pose_s = 0.0
        self._next_camera_s = 0.0

        self.joint_pub = self.create_publisher(JointState, 'joint_states', STATE_PUB_QOS)
        self.clock_pub = self.create_publisher(ClockMsg, 'clock', STATE_PUB_QOS)
        self.object_pub = self.create_publisher(PoseStamped, 'object_pose', STATE_PUB_QOS)
        self.goal_pub = (self.create_publisher(PoseStamped, 'goal_pose', STATE_PUB_QOS)
                         if cfg.task == 'pick_place' else None)
        self.success_pub = self.create_publisher(Bool, 'task_success', STATE_PUB_QOS)
        if cfg.camera_enabled:
            self.image_pub = self.create_publisher(Image, 'camera/image_raw', IMAGE_PUB_QOS)
            self.info_pub = self.create_publisher(CameraInfo, 'camera/camera_info',
                                                  IMAGE_PUB_QOS)
            self.depth_pub = (self.create_publisher(Image, 'camera/depth/image_raw',
                                                    IMAGE_PUB_QOS) if cfg.camera_depth else None)
        self.create_subscription(Float64MultiArray, 'forward_position_controller/commands',
                                 self._on_forward_command, COMMAND_QOS)
        self.create_subscription(JointTrajectory, 'joint_trajectory_controller/joint_trajectory',
                                 self._on_trajectory, COMMAND_QOS)
        self.create_service(Trigger, '~/reset', self._on_reset)
        period_s = 1.0 / cfg.joint_state_rate_hz
        if cfg.real_time_factor > 0:
            period_s /= cfg.real_time_factor
        self.timer = self.create_timer(period_s if cfg.real_time_factor > 0 else 0.0,
                                       self._tick, clock=self._wall)
        self.get_logger().info(
            f'simulating {cfg.task} at {cfg.physics_rate_hz:g} Hz physics, joint states at '
            f'{cfg.joint_state_rate_hz:g} Hz, real_time_factor {cfg.real_time_factor:g}')

    # ---- time ----

    def _wall_s(self) -> float:
        return self._wall.now().nanoseconds * 1e-9

    def sim_stamp(self) -> Time:
        """Return the current simulated time as a builtin_interfaces/Time."""
        return time_msg(self._clock_offset_s + self._sim_s)

    # ---- commands ----

    def _reject(self, kind: str, reason: str) -> None:
        # Throttled per kind of fault, so a flood of one bad command hides no other fault.
        self.commands_rejected += 1
        now = time.monotonic()
        if now - self._last_reject.get(kind, -np.inf) >= 1.0:
            self._last_reject[kind] = now
            self.get_logger().error(reason)

    def _on_forward_command(self, msg: Float64MultiArray) -> None:
        data = np.asarray(msg.data, dtype=np.float64)
        if data.shape != (len(JOINT_NAMES),):
            self._reject('length', f'ignoring command with {data.size} values; the forward '
                         f'position controller expects {len(JOINT_NAMES)} '
                         f'({", ".join(JOINT_NAMES)})')
            return
        try:
            self.targets = self.env.check_command(data)
        except ValueError as err:
            self._reject('value', f'ignoring command: {err}')
            return
        self.env.set_joint_targets(self.targets)
        self.trajectory.stop()

    def _on_trajectory(self, msg: JointTrajectory) -> None:
        index = {name: i for i, name in enumerate(JOINT_NAMES)}
        unknown = [n for n in msg.joint_names if n not in index]
        if unknown or len(set(msg.joint_names)) != len(msg.joint_names):
            self._reject('joints', f'ignoring trajectory: unknown or repeated joints '
                         f'{unknown or "-"} in {list(msg.joint_names)}; the controller has '
                         f'{list(JOINT_NAMES)}')
            return
        if not msg.points:  # joint_trajectory_controller: an empty trajectory stops motion
            self.trajectory.stop()
            return
        q_now = self.targets.copy()
        cols = [index[n] for n in msg.joint_names]
        points = np.repeat(q_now[None, :], len(msg.points), axis=0)
        for k, point in enumerate(msg.points):
            if len(point.positions) != len(cols):
                self._reject('points', f'ignoring trajectory: point {k} has '
                             f'{len(point.positions)} positions for {len(cols)} joints')
                return
            points[k, cols] = point.positions
        try:
            points = np.stack([self.env.check_command(p) for p in points])
            stamp = stamp_s(msg.header.stamp)
            now = self._clock_offset_s + self._sim_s
            start = stamp if stamp > 0 else now
            self.trajectory.start(start - self._clock_offset_s, q_now,
                                  [stamp_s(p.time_from_start) for p in msg.points], points)
        except ValueError as err:
            self._reject('trajectory', f'ignoring trajectory: {err}')

    # ---- episode ----

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response):
        self.env.reset()
        self.targets = self.env.joint_state()[1][:len(JOINT_NAMES)].copy()
        self.trajectory.stop()
        self.episode += 1
        self._next_pose_s = self._sim_s
        self._publish_state(force_all=True)
        response.success = True
        response.message = f'episode {self.episode} of {self.config.task} started'
        self.get_logger().info(response.message)
        return response

    # ---- simulation loop ----

    def _sim_target_s(self) -> float:
        """Return the simulated time the clock owes the wall clock at this tick."""
        cfg = self.config
        if cfg.real_time_factor == 0:
            return self._next_state_s
        if self._anchor is None:
            self._anchor = (self._wall_s(), self._sim_s)
        wall0, sim0 = self._anchor
        target = sim0 + cfg.real_time_factor * (self._wall_s() - wall0)
        if target - self._sim_s > cfg.max_catch_up_s:
            self.get_logger().warning(
                f'simulation is more than {cfg.max_catch_up_s} s behind real time '
                f'x{cfg.real_time_factor:g}; dropping the backlog', throttle_duration_sec=5.0)
            self._anchor = (self._wall_s(), self._sim_s)
            self._next_state_s = self._sim_s
            target = self._sim_s
        return target

    def _advance_to(self, t_s: float) -> None:
        steps = int(np.floor((t_s - self._sim_s) / self.dt_s + 1e-6))
        if steps <= 0:
            return
        if self.trajectory.active:
            for _ in range(steps):
                target = self.trajectory.sample(self._sim_s + self.dt_s)
                if target is not None:
                    self.targets = target
                    self.env.set_joint_targets(target)
                self.env.step_physics(1)
                self._sim_s += self.dt_s
        else:
            self.env.step_physics(steps)
            self._sim_s += steps * self.dt_s

    def _tick(self) -> None:
        # A late tick publishes every joint state it owes, so the state rate holds on
        # average even when the executor cannot wake up once per period.
        target = self._sim_target_s()
        while self._next_state_s <= target + 1e-9:
            self._advance_to(self._next_state_s)
            self._publish_state()
            self._next_state_s += 1.0 / self.config.joint_state_rate_hz

    def _publish_state(self, force_all: bool = False) -> None:
        cfg = self.config
        stamp = self.sim_stamp()
        # One joint state per instant of simulated time: stamps strictly increase.
        if self._sim_s > self._last_state_s:
            self._last_state_s = self._sim_s
            self.clock_pub.publish(ClockMsg(clock=stamp))
            names, pos, vel, eff = self.env.joint_state()
            self.joint_pub.publish(joint_state_msg(names, pos, vel, eff, stamp))
        if force_all or self._sim_s >= self._next_pose_s:
            self._next_pose_s = self._sim_s + 1.0 / cfg.pose_rate_hz
            self.object_pub.publish(pose_msg(self.env.object_pose(), cfg.base_frame, stamp))
            if self.goal_pub is not None:
                self.goal_pub.publish(pose_msg(self.env.goal_pose, cfg.base_frame, stamp))
            self.success_pub.publish(Bool(data=bool(self.env.is_success())))
        if cfg.camera_enabled and (force_all or self._sim_s >= self._next_camera_s):
            self._next_camera_s = self._sim_s + 1.0 / cfg.camera_rate_hz
            rgb, depth = self.env.camera_image()
            self.image_pub.publish(image_msg(rgb, stamp, cfg.camera_frame))
            self.info_pub.publish(camera_info_msg(cfg.camera_width, cfg.camera_height,
                                                  self.env.config.camera.fov_deg, stamp,
                                                  cfg.camera_frame))
            if self.depth_pub is not None and depth is not None:
                self.depth_pub.publish(depth_msg(depth, stamp, cfg.camera_frame))

    def destroy_node(self) -> None:
        """Close the simulation with the node."""
        self.env.close()
        super().destroy_node()


def main(args: Optional[list] = None) -> int:
    """Run the simulator node until shutdown."""
    return run_node(SimNode, args)


if __name__ == '__main__':
    raise SystemExit(main())
