"""
The inference core: robot state and observations in, gated joint commands out (no ROS).

``InferenceController`` is everything the inference node does between its messages:

- ``on_joint_state`` matches joints by name, feeds the command gate and the observation;
- ``on_observation`` takes the other observation keys (object / goal pose); ``on_image``
  takes a camera frame, converts its encoding and resizes it as the training frames were;
- ``policy_step`` runs the policy once on the newest observation and hands its chunk to the
  :class:`ChunkScheduler` (a :class:`PolicyWorker` thread calls it at the policy rate);
- ``tick`` returns the command of one control tick: the scheduler's blended, interpolated
  target passed through :class:`CommandGate`, or None when nothing may be published.

Nothing is published while disabled; enabling re-anchors the gate on the measured position
and starts a new episode (empty history, no chunks), so an enable never jumps.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
import math
import threading
import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

from lam_ros.control.chunk_scheduler import ChunkScheduler
from lam_ros.control.gate import CommandGate, GateConfig
from lam_ros.control.limits import JointLimits
from lam_ros.control.loop_stats import LatencyStats, TickStats
from lam_ros.data.images import decode_frame, resize_frame
from lam_ros.description import image_key, image_kind, RobotDescription
from lam_ros.policy.backend import ObservationHistory
import numpy as np

JOINT_STATE_KEYS = ('joint_pos', 'joint_vel', 'gripper_width')
"""Observation keys computed from the joint states; any other key comes from its own topic."""
COMMAND_INTERFACES = ('forward', 'trajectory')


@dataclass
class InferenceConfig:
    """Settings of the inference node (each field is a ROS parameter of the same name)."""

    checkpoint: str = ''
    """Policy checkpoint directory (model.safetensors + config.json)."""
    robot: str = ''
    """Robot description (name under config/robots/ or YAML path); '' = the checkpoint's."""
    backend: str = 'torch'
    """Policy backend: torch."""
    device: str = 'auto'
    """auto (cuda when present, else cpu), cpu, cuda or cuda:N."""
    half: bool = False
    """Run the policy in fp16 (CUDA only)."""
    compile_model: bool = False
    """torch.compile the policy with CUDA graphs (CUDA only)."""
    policy_process: bool = False
    """Run the policy in its own process instead of a thread (no shared interpreter lock)."""
    policy_threads: int = 1
    """torch CPU threads of the policy (0 = torch's default: every core, none left for the
    control loop)."""
    control_rate_hz: float = 100.0
    """Rate of published commands (Hz); the policy runs at its checkpoint rate."""
    control_priority: int = 50
    """SCHED_FIFO priority 1..99 of the control loop thread, as ros2_control's loop (needs
    CAP_SYS_NICE or an rtprio limit; without, a warning and normal scheduling); 0 = normal
    scheduling. Under SCHED_FIFO the loop also polls the clock for the last 200 us before
    each deadline."""
    command_interface: str = 'forward'
    """forward: Float64MultiArray to a forward position controller; trajectory:
    JointTrajectory to a joint_trajectory_controller."""
    command_topic: str = ''
    """Controller command topic; '' = the robot's command or trajectory_command topic."""
    joint_state_topic: str = ''
    """sensor_msgs/JointState of the arm ('' = the robot's); joints are matched by name."""
    observation_topics: List[str] = field(default_factory=list)
    """key:topic for observations beyond the joint states (PoseStamped poses, Image
    <camera>_rgb / <camera>_depth); a key not listed uses the robot's topic (object_pose,
    goal_pose, <camera>_rgb: <ns>/image_raw, <camera>_depth: <ns>/depth/image_raw with <ns>
    from topics.cameras)."""
    gripper_joints: List[str] = field(default_factory=list)
    """Joints whose positions (m) sum to gripper_width; empty = the robot's gripper."""
    autostart: bool = False
    """Enable at start-up; otherwise nothing is published until ~/enable is called."""
    urdf_path: str = ''
    """URDF for the limits; '' = the robot_description parameter, else the robot's URDF."""
    max_velocity_scale: float = 1.0
    """Fraction (0..1] of the URDF velocity limits the commands may move at."""
    max_step: float = 0.0
    """Largest change of a joint per control tick (rad or m); 0 = velocity limits only."""
    state_timeout_s: float = 0.1
    """Joint states older than this (s) are stale: commands hold, the policy waits."""
    state_tolerance: float = 0.1
    """A measured position further outside its limits than this (rad or m) is malformed."""
    observation_timeout_s: float = 1.0
    """The policy waits while any other observation is older than this (s)."""
    ensemble_decay: float = 0.01
    """Temporal ensembling weight decay of older predictions (0 = plain mean)."""
    interpolate: bool = True
    """Interpolate linearly between policy steps (false: hold each step's target)."""
    stats_rate_hz: float = 1.0
    """Rate of ~/stats diagnostics (Hz)."""

    def __post_init__(self) -> None:
        """Reject settings the node cannot run with."""
        if not self.control_rate_hz > 0.0 or not math.isfinite(self.control_rate_hz):
            raise ValueError(f'control_rate_hz must be a positive number, got '
                             f'{self.control_rate_hz}')
        if self.command_interface not in COMMAND_INTERFACES:
            raise ValueError(f'command_interface must be one of {COMMAND_INTERFACES}, got '
                             f'{self.command_interface!r}')
        for name in ('state_timeout_s', 'observation_timeout_s', 'stats_rate_hz'):
            if not getattr(self, name) > 0.0:
                raise ValueError(f'{name} must be positive, got {getattr(self, name)}')
        if self.max_step < 0.0:
            raise ValueError(f'max_step must be >= 0 (0 = off), got {self.max_step}')
        self.topic_of()

    def topic_of(self) -> Dict[str, str]:
        """Return observation key -> topic from ``observation_topics``."""
        out = {}
        for entry in self.observation_topics:
            key, sep, topic = entry.partition(':')
            if not sep or not key or not topic:
                raise ValueError(f'observation_topics entries are key:topic, got {entry!r}')
            out[key] = topic
        return out

    def resolved(self, robot: RobotDescription) -> 'InferenceConfig':
        """Return a copy with every empty topic and the gripper filled from ``robot``."""
        topics = robot.topics
        defaults = {'object_pose': topics.object_pose, 'goal_pose': topics.goal_pose}
        for camera in topics.cameras:
            defaults[image_key(camera, 'rgb')] = topics.camera_topic(camera, 'image')
            defaults[image_key(camera, 'depth')] = topics.camera_topic(camera, 'depth')
        defaults.update(self.topic_of())
        return replace(
            self, robot=self.robot or robot.name,
            command_topic=self.command_topic or (
                topics.command if self.command_interface == 'forward'
                else topics.trajectory_command),
            joint_state_topic=self.joint_state_topic or topics.joint_state,
            observation_topics=[f'{k}:{v}' for k, v in defaults.items() if v],
            gripper_joints=list(self.gripper_joints or robot.gripper.width_joints))

    def gate_config(self) -> GateConfig:
        """Return the command gate's settings."""
        return GateConfig(max_velocity_scale=self.max_velocity_scale,
                          max_step=self.max_step if self.max_step > 0.0 else math.inf,
                          state_timeout_s=self.state_timeout_s,
                          state_tolerance=self.state_tolerance)


class JointStateError(ValueError):
    """A joint state that does not carry the policy's joints."""


class InferenceController:
    """Gate, scheduler, observations and policy of one arm; thread-safe between callers."""

    def __init__(self, backend: Any, limits: JointLimits, config: InferenceConfig,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """Control the joints of ``backend.config`` with ``limits`` (same joints, any order)."""
        policy = backend.config
        self.backend, self.config, self.clock = backend, config, clock
        self.joint_names = tuple(policy.joint_names)
        self.limits = limits.select(self.joint_names)
        self.gate = CommandGate(self.limits, config.control_rate_hz, config.gate_config())
        self.policy_rate_hz = float(policy.control_rate_hz)
        self.scheduler = ChunkScheduler(policy.chunk_size, policy.action_dim,
                                        self.policy_rate_hz, config.ensemble_decay,
                                        config.interpolate)
        self.history = ObservationHistory(policy)
        self.obs_spec = dict(policy.obs_spec)
        self.external_keys = [k for k in self.obs_spec if k not in JOINT_STATE_KEYS]
        unknown = [k for k in self.external_keys if k not in config.topic_of()]
        if unknown:
            raise ValueError(f'the policy observes {unknown}, which the robot description '
                             'publishes on no topic; add key:topic to observation_topics')
        needs_gripper = 'gripper_width' in self.obs_spec
        if needs_gripper and not config.gripper_joints:
            raise ValueError('the policy observes gripper_width; set gripper_joints')
        self._gripper = list(config.gripper_joints) if needs_gripper else []
        self._lock = threading.Lock()
        self._latest: Dict[str, tuple] = {}  # key -> (arrival s, array)
        self._names: Optional[tuple] = None
        self._index: List[int] = []
        self._grip_index: List[int] = []
        self.enabled = False
        self._episode = 0
        self.policy_latency = LatencyStats()
        self.ticks = TickStats(1.0 / config.control_rate_hz)
        self.policy_errors = 0
        self.last_policy_error = ''
        self.joint_state_error = ''
        self.observation_errors: Dict[str, str] = {}
        """Key -> why its newest message was refused ('' once a good one comes)."""

    # ---- inputs ----

    def _match(self, names: Sequence[str]) -> None:
        index = {n: i for i, n in enumerate(names)}
        wanted = list(self.joint_names) + [n for n in self._gripper if n not in self.joint_names]
        self._names, self._index = None, []
        if len(index) != len(names):
            raise JointStateError(f'/joint_states repeats joint names: {list(names)}')
        missing = [n for n in wanted if n not in index]
        if missing:
            raise JointStateError(
                f'/joint_states has joints {list(names)} but lacks {missing}; the policy '
                f'commands {list(self.joint_names)}. Remap the topic or use a checkpoint '
                'trained on this arm')
        self._names = tuple(names)
        self._index = [index[n] for n in wanted]
        self._grip_index = [wanted.index(n) for n in self._gripper]

    def on_joint_state(self, now_s: float, names: Sequence[str], position: Sequence[float],
                       velocity: Sequence[float] = ()) -> str:
        """Take a joint state; return '' or why it was rejected (the gate then goes stale)."""
        try:
            if self._names != tuple(names):
                self._match(names)
            if len(position) != len(names):
                raise JointStateError(f'/joint_states has {len(names)} names but '
                                      f'{len(position)} positions')
            pos = np.asarray(position, dtype=np.float64)[self._index]
        except (JointStateError, TypeError, ValueError) as err:
            self.joint_state_error = str(err)
            return self.joint_state_error
        n = len(self.joint_names)
        q = pos[:n]
        with self._lock:
            accepted = self.gate.update_state(now_s, q)
        if not accepted:
            self.joint_state_error = self.gate.reason
            return self.joint_state_error
        self.joint_state_error = ''
        vel = np.asarray(velocity, dtype=np.float64)
        dq = vel[self._index[:n]] if vel.shape == (len(names),) else np.zeros(n)
        with self._lock:
            self._latest['joint_pos'] = (now_s, q)
            # A driver without velocities (or with NaN ones) reads as a joint at rest.
            self._latest['joint_vel'] = (now_s, np.nan_to_num(dq, nan=0.0, posinf=0.0,
                                                              neginf=0.0))
            if self._gripper:
                self._latest['gripper_width'] = (now_s, np.array([pos[self._grip_index].sum()]))
        return ''

    def on_observation(self, now_s: float, key: str, value: np.ndarray) -> str:
        """Take the newest value of an observation key; return '' or why it was rejected."""
        value = np.asarray(value)
        shape = self.obs_spec.get(key)
        if shape is None:
            return f'the policy does not observe {key!r}'
        if value.shape != tuple(shape):
            return self.refuse(key, f'{key} has shape {value.shape}; the policy expects '
                                    f'{tuple(shape)}')
        if value.dtype != np.uint8 and not np.all(np.isfinite(value)):
            return self.refuse(key, f'{key} contains NaN/Inf')
        with self._lock:
            self._latest[key] = (now_s, value)
            self.observation_errors.pop(key, None)
        return ''

    def on_image(self, now_s: float, key: str, pixels: np.ndarray, encoding: str) -> str:
        """
        Take a camera frame (decoded Image pixels, H x W x C) for image key ``key``.

        The encoding is converted and the frame resized to the policy's input exactly as the
        dataset builder did (:mod:`lam_ros.data.images`). Returns '' or why it was refused;
        a refused frame leaves the key stale, so the policy waits and the gate holds.
        """
        if key not in self.obs_spec:
            return f'the policy does not observe {key!r}'
        try:
            value = prepare_image(pixels, encoding, key, self.obs_spec[key])
        except ValueError as err:
            return self.refuse(key, f'{key}: {err}')
        return self.on_observation(now_s, key, value)

    def refuse(self, key: str, reason: str) -> str:
        """Record that the newest message of ``key`` was refused (in stats); return reason."""
        with self._lock:
            self.observation_errors[key] = reason
        return reason

    def observation(self, now_s: float) -> tuple:
        """Return (the policy's observation dict or None, what is missing or stale)."""
        with self._lock:
            latest = dict(self._latest)
        if not self.gate.state_age_s(now_s) <= self.config.state_timeout_s:
            return None, 'no fresh joint state'
        stale = [k for k in self.external_keys if k not in latest
                 or now_s - latest[k][0] > self.config.observation_timeout_s]
        if stale:
            return None, f'no fresh {stale}'
        return {k: latest[k][1] for k in self.obs_spec}, ''

    # ---- enable / disable ----

    def enable(self, now_s: float) -> None:
        """Start a new episode at ``now_s``: empty history, no chunks, gate re-anchored."""
        with self._lock:
            self.gate.resync()
            self.history.clear()
            self.scheduler.start(now_s)
            self.ticks.clear()
            self.enabled = True
            self._episode += 1

    def disable(self) -> Optional[np.ndarray]:
        """Stop commanding; return the hold command to publish once (None if none yet)."""
        with self._lock:
            self.enabled = False
            return self.gate.last_command

    # ---- the two loops ----

    def policy_step(self, step: int) -> Optional[bool]:
        """Run the policy for policy step ``step``; None when it could not run, else accepted."""
        now = self.clock()
        episode = self._episode
        obs, _ = self.observation(now)
        if obs is None or not self.enabled:
            return None
        try:
            self.history.append(obs)
            chunk = self.backend.predict_chunk(*self.history.stacked())
        except (ValueError, RuntimeError) as err:
            self.policy_errors += 1
            self.last_policy_error = str(err)
            return None
        self.policy_latency.record(self.clock() - now)
        with self._lock:
            if episode != self._episode:  # re-enabled meanwhile: the step means nothing now
                return None
            return self.scheduler.add_chunk(step, chunk)

    def tick(self, now_s: float) -> Optional[np.ndarray]:
        """Return this control tick's command, or None: publish nothing."""
        with self._lock:
            if not self.enabled:
                return None
            self.ticks.record(now_s)
            target = self.scheduler.target(now_s)
            return self.gate.step(now_s, target)

    def stats(self, now_s: float) -> Dict[str, Any]:
        """Return the figures of ~/stats."""
        ticks = self.ticks.summary()
        return {
            'enabled': self.enabled, 'loop_rate_hz': ticks.rate_hz,
            'control_rate_hz': self.config.control_rate_hz, 'ticks': self.ticks.total_ticks,
            'ticks_late': ticks.late, 'ticks_missed': ticks.missed,
            'on_time_fraction': ticks.on_time_fraction,
            'jitter_p50_ms': 1e3 * ticks.jitter_p50_s, 'jitter_p99_ms': 1e3 * ticks.jitter_p99_s,
            'lateness_p50_ms': 1e3 * ticks.lateness_p50_s,
            'lateness_p99_ms': 1e3 * ticks.lateness_p99_s,
            'policy_rate_hz': self.policy_rate_hz, 'policy_calls': self.policy_latency.count,
            'policy_latency_p50_ms': 1e3 * self.policy_latency.percentile(50),
            'policy_latency_p99_ms': 1e3 * self.policy_latency.percentile(99),
            'policy_errors': self.policy_errors, 'chunks_rejected':
                self.scheduler.chunks_rejected, 'state_age_ms': 1e3 * self.gate.state_age_s(now_s),
            'gate_reason': self.gate.reason, 'joint_state_error': self.joint_state_error,
            'observation_error': '; '.join(v for _, v in sorted(
                self.observation_errors.items())),
        }


def observation_items(config: InferenceConfig, obs_spec: Mapping[str, Any]) -> Dict[str, str]:
    """Return key -> topic of the observations a policy needs beyond the joint states."""
    topics = config.topic_of()
    return {k: topics[k] for k in obs_spec if k not in JOINT_STATE_KEYS}


def prepare_image(pixels: np.ndarray, encoding: str, key: str,
                  shape: Sequence[int]) -> np.ndarray:
    """
    Convert decoded Image pixels (H, W, C) to the policy's ``key`` array of ``shape``.

    ``<camera>_rgb``: rgb8/bgr8/rgba8/bgra8/mono8 -> uint8 RGB; ``<camera>_depth``: 32FC1 (m)
    or 16UC1 (mm) -> float32 metres. Other sizes are resized (bilinear) to the size the policy
    was trained on.
    """
    kind = image_kind(key)
    if kind is None:
        raise ValueError(f'{key!r} is not an image observation')
    return resize_frame(decode_frame(np.asarray(pixels), encoding, kind), shape[:2])
