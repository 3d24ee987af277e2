"""
The simulated robot as a stream of timed samples: what a sim publishes, and when (no ROS).

:class:`SimDriver` takes joint commands and trajectories, steps the physics and reports the
samples that fall due on the way (joint states, object and goal poses, task success, camera
frames) as :class:`Sample` records. ``sim_node`` publishes them on topics and
``record_demos`` writes them into bags, through the same builders, so both carry the same
topics at the same rates. :class:`SimClock` says how far the simulation should have run at
a wall-clock instant.
"""

from __future__ import annotations

from dataclasses import dataclass
import math
from typing import Any, Dict, Iterable, Mapping, Optional, Sequence, Tuple

from lam_ros.control.trajectory import points_by_name, TrajectoryFollower
from lam_ros.description import CameraConfig, pinhole_intrinsics, RobotDescription, TOPIC_TYPES
from lam_ros.description.robot import CAMERA_TOPICS
from lam_ros.sim.robot import ROBOT
import numpy as np

STATE_ROLES = ('joint_state', 'object_pose', 'goal_pose', 'success')
"""Sample roles of the arm and the task; a camera's roles are ``<camera>/<role>`` with role
``image``, ``depth`` or ``camera_info`` (:data:`lam_ros.description.robot.CAMERA_TOPICS`)."""


def sim_topics(robot: RobotDescription = ROBOT,
               cameras: Iterable[str] = ()) -> Dict[str, Tuple[str, str]]:
    """Return sample role -> (topic relative to the node's namespace, message type)."""
    out = {role: (robot.topics.topic_of(role).lstrip('/'), TOPIC_TYPES[role])
           for role in STATE_ROLES}
    for camera in cameras:
        for role, (_, msgtype) in CAMERA_TOPICS.items():
            out[f'{camera}/{role}'] = (robot.topics.camera_topic(camera, role).lstrip('/'),
                                       msgtype)
    return out


SIM_TOPICS = sim_topics()
"""Role -> (topic, type) of the default robot's arm and task samples (no cameras)."""

STATE_RATE_HZ = 100.0
"""Default rate of joint states and /clock (Hz of simulated time), sim_node and demos alike."""

POSE_RATE_HZ = 30.0
"""Default rate of object pose, goal pose and task success (Hz of simulated time)."""

CAMERA_RATE_HZ = CameraConfig.rate_hz
"""Default camera frame rate (Hz of simulated time)."""

_EPS = 1e-9


@dataclass
class Sample:
    """One thing the simulated robot reports at simulated time ``t_s``."""

    role: str
    """Key of :func:`sim_topics`: an arm or task role, or ``<camera>/<role>``."""
    t_s: float
    """Simulated seconds on the driver's clock."""
    value: Any
    """joint_state: (names, pos, vel, effort); poses: 7 floats; success: bool; image: (H,
    W, 3) uint8; depth: (H, W, 1) float32 m; camera_info: (width, height, 3x3 K)."""

    @property
    def camera(self) -> str:
        """Return the camera of a camera sample, '' for the others."""
        return self.role.partition('/')[0] if '/' in self.role else ''

    @property
    def kind(self) -> str:
        """Return the role without its camera: image, depth, camera_info, joint_state..."""
        return self.role.rpartition('/')[2]


class CommandRejected(ValueError):
    """A command or trajectory the simulated controller refuses; ``kind`` names the fault."""

    def __init__(self, kind: str, message: str) -> None:
        """Describe the fault ``kind`` (length, value, joints, points, trajectory)."""
        super().__init__(message)
        self.kind = kind


class _Rate:
    """When a periodic sample is next due (a fixed grid; a jump ahead skips missed slots)."""

    def __init__(self, rate_hz: float) -> None:
        self.period_s = 1.0 / rate_hz
        self.next_s = 0.0

    def due(self, t_s: float, force: bool) -> bool:
        if not (force or t_s >= self.next_s - _EPS):
            return False
        self.next_s += self.period_s
        if self.next_s <= t_s + _EPS:
            self.next_s = t_s + self.period_s
        return True


class SimStream:
    """Which samples of an env are due at a simulated instant, at their own rates."""

    def __init__(self, env: Any, state_rate_hz: float, pose_rate_hz: float,
                 cameras: Optional[Sequence[str]] = None) -> None:
        """
        Sample ``env`` (a GraspEnv) at the given rates.

        ``cameras``: the enabled cameras of ``env.config`` to stream, each at its own
        ``rate_hz`` and with depth when its ``depth`` is set; None: all enabled cameras.
        """
        for name, value in (('state_rate_hz', state_rate_hz), ('pose_rate_hz', pose_rate_hz)):
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f'{name} must be a positive rate (Hz), got {value}')
        self.env = env
        self.has_goal = 'goal_pose' in env.observation_space.spaces
        enabled = env.config.enabled_cameras
        names = list(enabled) if cameras is None else list(cameras)
        off = [n for n in names if n not in enabled]
        if off:
            raise ValueError(f'cameras {off} are not enabled in the env; enabled: '
                             f'{sorted(enabled)}')
        self.cameras: Dict[str, CameraConfig] = {n: enabled[n] for n in names}
        self._state = _Rate(state_rate_hz)
        self._pose = _Rate(pose_rate_hz)
        self._camera_rates = {n: _Rate(cam.rate_hz) for n, cam in self.cameras.items()}

    def roles(self) -> list[str]:
        """Return the roles this stream produces: arm and task roles, then the cameras'."""
        out = [r for r in STATE_ROLES if r != 'goal_pose' or self.has_goal]
        for name, cam in self.cameras.items():
            out += [f'{name}/image', f'{name}/camera_info'] + (
                [f'{name}/depth'] if cam.depth else [])
        return out

    def restart(self, t_s: float, state: bool = True) -> None:
        """Make every sample due at ``t_s`` (a start), or all but the joint state (a reset)."""
        for rate in (self._state if state else None, self._pose,
                     *self._camera_rates.values()):
            if rate is not None:
                rate.next_s = t_s

    def due(self, t_s: float, force: bool = False) -> list[Sample]:
        """Return the samples due at ``t_s`` (all of them with ``force``)."""
        env, out = self.env, []
        if self._state.due(t_s, force):
            out.append(Sample('joint_state', t_s, env.joint_state()))
        if self._pose.due(t_s, force):
            out.append(Sample('object_pose', t_s, env.object_pose()))
            if self.has_goal:
                out.append(Sample('goal_pose', t_s, env.goal_pose))
            out.append(Sample('success', t_s, bool(env.is_success())))
        for name, rate in self._camera_rates.items():
            if not rate.due(t_s, force):
                continue
            rgb, depth = env.camera_image(name)
            height, width = rgb.shape[:2]
            k = pinhole_intrinsics(width, height, self.cameras[name].fov_deg)
            out.append(Sample(f'{name}/image', t_s, rgb))
            out.append(Sample(f'{name}/camera_info', t_s, (width, height, k)))
            if depth is not None:
                out.append(Sample(f'{name}/depth', t_s, np.asarray(depth, dtype=np.float32)))
        return out


class SimDriver:
    """
    A simulated arm behind ros2_control-style command interfaces, on its own clock.

    ``sim_s`` counts simulated seconds from construction and keeps counting across
    :meth:`reset`, so stamps never go back.
    """

    def __init__(self, env: Any, stream: SimStream, joint_names: Sequence[str]) -> None:
        """Drive ``env`` (already reset) whose commanded joints are ``joint_names``."""
        self.env, self.stream = env, stream
        self.joint_names = tuple(joint_names)
        self.dt_s = 1.0 / env.config.physics_rate_hz
        self.sim_s = 0.0
        self.trajectory = TrajectoryFollower()
        self.allow_partial_joints_goal = False
        """Accept trajectories naming only some joints (the rest hold their targets)."""
        self.targets = self._measured()
        stream.restart(0.0)

    def _measured(self) -> np.ndarray:
        return np.asarray(self.env.joint_state()[1][:len(self.joint_names)], dtype=np.float64)

    def command(self, values: Sequence[float]) -> None:
        """Hold the joints at ``values`` (forward position controller); CommandRejected."""
        data = np.asarray(values, dtype=np.float64)
        n = len(self.joint_names)
        if data.shape != (n,):
            raise CommandRejected('length', f'ignoring command with {data.size} values; the '
                                  f'forward position controller expects {n} '
                                  f'({", ".join(self.joint_names)})')
        try:
            self.targets = self.env.check_command(data)
        except ValueError as err:
            raise CommandRejected('value', f'ignoring command: {err}') from err
        self.env.set_joint_targets(self.targets)
        self.trajectory.stop()

    def follow(self, joint_names: Sequence[str], positions: Sequence[Sequence[float]],
               times_from_start_s: Sequence[float], start_s: Optional[float] = None) -> None:
        """
        Follow a trajectory by joint name from the current targets; CommandRejected.

        ``start_s`` is on the driver's clock (None: now). No points stop the motion, as a
        joint_trajectory_controller does with an empty trajectory.
        """
        if not positions:
            self.trajectory.stop()
            return
        missing = [n for n in self.joint_names if n not in joint_names]
        if missing and not self.allow_partial_joints_goal:
            raise CommandRejected(
                'partial', f'ignoring trajectory: it does not name joints {missing}; partial '
                'goals need allow_partial_joints_goal:=true (as in joint_trajectory_controller)')
        try:
            points = points_by_name(self.joint_names, self.targets, joint_names, positions)
        except ValueError as err:
            raise CommandRejected('joints', f'ignoring trajectory: {err}') from err
        try:
            points = np.stack([self.env.check_command(p) for p in points])
            self.trajectory.start(self.sim_s if start_s is None else start_s,
                                  self.targets.copy(), times_from_start_s, points)
        except ValueError as err:
            raise CommandRejected('trajectory', f'ignoring trajectory: {err}') from err

    def due_now(self) -> list[Sample]:
        """Return the samples due at the current instant (all of them right after start)."""
        return self.stream.due(self.sim_s)

    def reset(self, seed: Optional[int] = None) -> list[Sample]:
        """Start a new randomised episode; return the new scene's samples, due at once."""
        self.env.reset(seed=seed)
        self.targets = self._measured()
        self.trajectory.stop()
        # One joint state per instant: the state comes at its next slot, stamps stay unique.
        self.stream.restart(self.sim_s, state=False)
        return self.due_now()

    def run_until(self, t_s: float) -> list[Sample]:
        """Step the physics up to ``t_s`` (sim seconds); return the samples due on the way."""
        out: list[Sample] = []
        steps = int(math.floor((t_s - self.sim_s) / self.dt_s + 1e-6))
        for _ in range(max(steps, 0)):
            if self.trajectory.active:
                target = self.trajectory.sample(self.sim_s + self.dt_s)
                if target is not None:
                    self.targets = target
                    self.env.set_joint_targets(target)
            self.env.step_physics(1)
            self.sim_s += self.dt_s
            out.extend(self.stream.due(self.sim_s))
        return out


def sample_message(build: Any, sample: Sample, stamp_ns: int, base_frame: str,
                   camera_frames: Mapping[str, str]) -> Any:
    """
    Return the message of ``sample`` made by ``build`` (a data.messages.MessageBuilder).

    Poses are in ``base_frame``; a camera's images and info in ``camera_frames[camera]``.
    """
    role, value = sample.kind, sample.value
    if role == 'joint_state':
        return build.joint_state(stamp_ns, *value)
    if role in ('object_pose', 'goal_pose'):
        return build.pose_stamped(stamp_ns, base_frame, value)
    if role == 'success':
        return build.bool_msg(value)
    if role in ('image', 'depth'):
        return build.image(stamp_ns, camera_frames[sample.camera], value)
    if role == 'camera_info':
        return build.camera_info(stamp_ns, camera_frames[sample.camera], *value)
    raise ValueError(f'unknown sample role {sample.role!r}; expected one of {STATE_ROLES} or '
                     f'<camera>/{list(CAMERA_TOPICS)}')


class SimClock:
    """How far the simulation should have run at a wall-clock instant (real-time factor)."""

    def __init__(self, real_time_factor: float, max_catch_up_s: float) -> None:
        """Run ``real_time_factor`` sim seconds per wall second (0: as fast as possible)."""
        if real_time_factor < 0 or not max_catch_up_s > 0:
            raise ValueError(f'real_time_factor must be >= 0 and max_catch_up_s > 0, got '
                             f'{real_time_factor}, {max_catch_up_s}')
        self.factor = float(real_time_factor)
        self.max_catch_up_s = float(max_catch_up_s)
        self._anchor: Optional[tuple[float, float]] = None  # (wall s, sim s)

    def target(self, wall_s: float, sim_s: float, budget_s: float) -> tuple[float, bool]:
        """
        Return (sim time to reach, whether a backlog was dropped).

        As fast as possible, each call owes ``budget_s`` more simulated seconds. In real time
        the sim owes what the wall clock says; falling more than ``max_catch_up_s`` behind
        re-anchors the clock instead of running in a burst.
        """
        if self.factor == 0:
            return sim_s + budget_s, False
        if self._anchor is None:
            self._anchor = (wall_s, sim_s)
        wall0, sim0 = self._anchor
        target = sim0 + self.factor * (wall_s - wall0)
        if target - sim_s > self.max_catch_up_s:
            self._anchor = (wall_s, sim_s)
            return sim_s, True
        return target, False
