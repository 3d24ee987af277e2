"""
Resample one episode's topics onto the policy-rate grid, and check it is fit for training.

Grid step ``k`` is at ``t0 + k / rate_hz``, where ``t0`` is the first time every required topic
has a message. Joint states and poses are interpolated (quaternions by slerp), images are the
most recent frame, and ``action[k]`` is the last command logged strictly before
``t_k + 1 / rate_hz``: the command that governs the interval after observation ``k``.

Which time each message is placed at: its **bag log time**, for every topic (the reader hands
over log times; header stamps are not read here). What the log time is depends on who wrote
the bag:

- ``recorder_node`` (``log_time: header``, its default) logs stamped messages (JointState,
  PoseStamped, Image, CameraInfo) at their header stamp, and headerless ones
  (``Float64MultiArray`` and ``JointTrajectory`` commands, ``Bool`` success) at the instant
  they arrived, read on the joint states' clock (``lam_ros.data.recording.timing``). Under a
  simulator that is simulated time, so states and commands line up at any
  ``real_time_factor``, however far the recorder lagged.
- ``recorder_node`` with ``log_time: receipt`` and plain ``ros2 bag record`` log the time the
  recorder processed each message: right only while the recorder kept up with the robot.
"""

from dataclasses import dataclass
from typing import Callable, Dict, Optional, Sequence, Tuple

from lam_ros.data.bags.reader import EpisodeError, RawEpisode, Stream, TopicMapping
from lam_ros.data.images import resize_frames
from lam_ros.description import image_kind
import numpy as np

INTERPOLATED_POSES = ('object_pose', 'goal_pose', 'ee_pose')
# gripper_width comes from the joint states, so it needs no gap check of its own.


@dataclass
class BuildOptions:
    """How episodes are resampled and which ones are accepted."""

    rate_hz: Optional[float] = None
    """Policy rate: samples per second of every episode (Hz). None: the rate the recording
    gives (``dataset.yaml``, else measured on the command topic; see ``dataset.rate``)."""

    max_gap_s: float = 0.5
    """Longest allowed silence on a required topic inside the sampled span (s)."""

    min_duration_s: float = 0.0
    """Shortest accepted episode, sampled span (s); 0 keeps every episode, however short
    (an episode that ends at success after half a second is a good demonstration)."""

    include_interrupted: bool = False
    """Also use episodes a recorder saved as ``interrupted`` (stopped by a crash or Ctrl-C)."""

    include_failures: bool = False
    """Also train on episodes whose outcome is a failure; successful episodes and episodes
    without a recorded outcome are always used."""

    image_size: Optional[Tuple[int, int]] = None
    """(height, width) every camera frame is resized to (rgb bilinear, depth nearest; see
    ``lam_ros.data.images``), the policy's input size; None keeps the recorded size."""

    std_floor: float = 1e-5
    """Lower bound on the normalisation standard deviations, so none is zero; kept below the
    policy's own threshold (``lam_ros.policy.normalization.MIN_STD``) for constant signals."""

    def __post_init__(self) -> None:
        """Reject values that would make the grid or the checks meaningless."""
        for name in ('rate_hz', 'max_gap_s', 'std_floor'):
            value = getattr(self, name)
            if name == 'rate_hz' and value is None:
                continue
            if not np.isfinite(value) or value <= 0.0:
                raise ValueError(f'{name} must be a positive number, got {value!r}')
        if not np.isfinite(self.min_duration_s) or self.min_duration_s < 0.0:
            raise ValueError(f'min_duration_s must be >= 0 seconds, got {self.min_duration_s!r}')
        if self.image_size is not None:
            size = tuple(self.image_size)
            if len(size) != 2 or not all(isinstance(v, (int, np.integer)) and v >= 1
                                         for v in size):
                raise ValueError(f'image_size must be (height, width) in pixels, '
                                 f'got {self.image_size!r}')
            self.image_size = (int(size[0]), int(size[1]))


EePoseFn = Callable[[np.ndarray], np.ndarray]
"""Forward kinematics: joint positions (T, A) -> end-effector poses (T, 7), w-first."""


def slerp(q0: np.ndarray, q1: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Interpolate unit quaternions row-wise along the shorter arc; ``alpha`` in [0, 1], (N,)."""
    q0 = q0 / np.linalg.norm(q0, axis=-1, keepdims=True)
    q1 = q1 / np.linalg.norm(q1, axis=-1, keepdims=True)
    dot = np.sum(q0 * q1, axis=-1)
    sign = np.where(dot < 0.0, -1.0, 1.0)
    q1 = q1 * sign[:, None]
    dot = np.clip(np.abs(dot), -1.0, 1.0)
    theta = np.arccos(dot)
    sin_theta = np.sin(theta)
    near = sin_theta < 1e-6
    safe = np.where(near, 1.0, sin_theta)
    w0 = np.where(near, 1.0 - alpha, np.sin((1.0 - alpha) * theta) / safe)
    w1 = np.where(near, alpha, np.sin(alpha * theta) / safe)
    q = w0[:, None] * q0 + w1[:, None] * q1
    q /= np.linalg.norm(q, axis=-1, keepdims=True)
    # Keep the sign of the nearer message so sampled values equal the raw ones at the samples.
    flip = (sign < 0.0) & (alpha >= 0.5)
    q[flip] *= -1.0
    return q


def _bracket(times_ns: np.ndarray, grid_ns: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Return, per grid time, the index of the message at or before it and the blend weight."""
    i0 = np.clip(np.searchsorted(times_ns, grid_ns, side='right') - 1, 0, times_ns.size - 1)
    i1 = np.minimum(i0 + 1, times_ns.size - 1)
    span = (times_ns[i1] - times_ns[i0]).astype(np.float64)
    offset = (grid_ns - times_ns[i0]).astype(np.float64)
    alpha = np.where(span > 0.0, offset / np.where(span > 0.0, span, 1.0), 0.0)
    return i0, np.clip(alpha, 0.0, 1.0)


def interpolate_linear(stream: Stream, grid_ns: np.ndarray) -> np.ndarray:
    """Linearly interpolate every column of a stream at the grid times."""
    i0, alpha = _bracket(stream.times_ns, grid_ns)
    i1 = np.minimum(i0 + 1, stream.times_ns.size - 1)
    a = alpha[:, None]
    return (1.0 - a) * stream.values[i0] + a * stream.values[i1]


def interpolate_pose(stream: Stream, grid_ns: np.ndarray) -> np.ndarray:
    """Interpolate ``[x, y, z, qw, qx, qy, qz]`` poses: position linearly, rotation by slerp."""
    i0, alpha = _bracket(stream.times_ns, grid_ns)
    i1 = np.minimum(i0 + 1, stream.times_ns.size - 1)
    v = stream.values
    pos = (1.0 - alpha[:, None]) * v[i0, :3] + alpha[:, None] * v[i1, :3]
    return np.concatenate([pos, slerp(v[i0, 3:], v[i1, 3:], alpha)], axis=1)


def _check_finite(raw: RawEpisode) -> None:
    for key, stream in raw.streams.items():
        if stream.values.size and not np.all(np.isfinite(stream.values)):
            bad = int(np.sum(~np.all(np.isfinite(stream.values.reshape(len(stream.values), -1)),
                                     axis=1)))
            raise EpisodeError(f'{key} has NaN/Inf values in {bad} of {len(stream.values)} '
                               'messages')
        if key in INTERPOLATED_POSES:
            norms = np.linalg.norm(stream.values[:, 3:], axis=1)
            if np.any(np.abs(norms - 1.0) > 0.1):
                worst = float(norms[np.argmax(np.abs(norms - 1.0))])
                raise EpisodeError(f'{key} has a quaternion of norm {worst:.3f}; expected unit '
                                   'quaternions')


def _check_gaps(key: str, times_ns: np.ndarray, t0_ns: int, t_end_ns: int, held: bool,
                max_gap_s: float) -> None:
    """Raise when a required topic is silent for longer than ``max_gap_s`` within the span."""
    inside = times_ns[(times_ns >= t0_ns) & (times_ns <= t_end_ns)]
    edges = [times_ns[times_ns < t0_ns][-1:], inside, times_ns[times_ns > t_end_ns][:1]]
    if held:
        # A held value (command, image) must also be fresh at the end of the span.
        edges.append(np.array([t_end_ns], dtype=np.int64))
    points = np.concatenate(edges)
    if points.size < 2:
        return
    gaps_s = np.diff(points) * 1e-9
    worst = int(np.argmax(gaps_s))
    if gaps_s[worst] > max_gap_s:
        raise EpisodeError(f'{key} is silent for {gaps_s[worst]:.3f} s from '
                           f't={(points[worst] - t0_ns) * 1e-9:+.3f} s of the sampled span '
                           f'(limit max_gap_s={max_gap_s} s)', 'gap', '--max-gap-s')


def resample_episode(raw: RawEpisode, mapping: TopicMapping, obs_keys: Sequence[str],
                     options: BuildOptions, ee_pose_fn: Optional[EePoseFn] = None
                     ) -> Tuple[Dict[str, np.ndarray], np.ndarray]:
    """
    Return ``(obs, action)`` on the policy-rate grid, or raise :class:`EpisodeError`.

    ``options.rate_hz`` must be set (the builder resolves None to the recording's rate).
    ``obs_keys`` are the optional observation keys (poses, images) the dataset uses; the
    episode must have every one of them.
    """
    if options.rate_hz is None:
        raise ValueError('resample_episode needs options.rate_hz; build_dataset chooses it')
    streams = raw.streams
    for key, topic in (('joint_pos', mapping.joint_state_topic),
                       ('action', mapping.command_topic)):
        if key not in streams:
            raise EpisodeError(f'no messages on {topic}')
    wanted = [k for k in obs_keys if not (k == 'ee_pose' and 'ee_pose' not in streams
                                          and ee_pose_fn is not None)]
    missing = [k for k in wanted if k not in streams]
    if missing:
        topics = dict(mapping.observation_topics(),
                      gripper_width=f'gripper joints {mapping.gripper_joints}')
        raise EpisodeError(f'missing observations {[topics.get(k, k) for k in missing]} '
                           'that other episodes have')
    _check_finite(raw)
    wanted = [k for k in wanted if k != 'gripper_width']
    required = ['joint_pos', 'action'] + wanted
    t0 = max(int(streams[k].times_ns[0]) for k in required)
    interpolated = ['joint_pos'] + [k for k in wanted if k in INTERPOLATED_POSES]
    t_end = min(int(streams[k].times_ns[-1]) for k in interpolated)
    if t_end < t0:
        raise EpisodeError('the topics never overlap in time (one ends before another starts)')
    steps = int(np.floor((t_end - t0) * 1e-9 * options.rate_hz + 1e-9)) + 1
    duration_s = steps / options.rate_hz
    if duration_s < options.min_duration_s:
        raise EpisodeError(f'too short: {duration_s:.2f} s of overlapping topics '
                           f'(min_duration_s={options.min_duration_s} s)', 'too short',
                           '--min-duration-s')
    for key in required:
        held = key not in interpolated
        _check_gaps(key, streams[key].times_ns, t0, t_end, held, options.max_gap_s)
    # Integer nanoseconds keep "strictly before the next sample" exact for commands.
    ticks = t0 + np.round(np.arange(steps + 1) * (1e9 / options.rate_hz)).astype(np.int64)
    grid, next_grid = ticks[:-1], ticks[1:]
    obs: Dict[str, np.ndarray] = {}
    pos = streams['joint_pos']
    obs['joint_pos'] = interpolate_linear(pos, grid)
    if 'joint_vel' in streams:
        obs['joint_vel'] = interpolate_linear(streams['joint_vel'], grid)
    else:
        # Bags without velocities: differentiate positions over the message times.
        times_s = (pos.times_ns - t0) * 1e-9
        vel = np.gradient(pos.values, times_s, axis=0) if times_s.size > 1 \
            else np.zeros_like(pos.values)
        obs['joint_vel'] = interpolate_linear(Stream(pos.times_ns, vel), grid)
    if 'gripper_width' in obs_keys:
        obs['gripper_width'] = interpolate_linear(streams['gripper_width'], grid)
    for key in wanted:
        if key in INTERPOLATED_POSES:
            obs[key] = interpolate_pose(streams[key], grid)
        elif image_kind(key):
            idx = np.searchsorted(streams[key].times_ns, grid, side='right') - 1
            # Each distinct frame is decoded and resized once, then repeated on the grid.
            unique, inverse = np.unique(idx, return_inverse=True)
            frames = resize_frames(raw.load_frames(key, unique), options.image_size)
            obs[key] = frames[inverse.reshape(-1)]
    if 'ee_pose' in obs_keys and 'ee_pose' not in obs:
        ee = np.asarray(ee_pose_fn(obs['joint_pos'].astype(np.float64)), dtype=np.float64)
        if ee.shape != (steps, 7):
            raise ValueError(f'ee_pose_fn returned shape {ee.shape}; expected ({steps}, 7)')
        obs['ee_pose'] = ee
    cmd = streams['action']
    action = cmd.values[np.searchsorted(cmd.times_ns, next_grid, side='left') - 1]
    for key, value in obs.items():
        if value.dtype != np.uint8:
            obs[key] = value.astype(np.float32)
        if not np.all(np.isfinite(obs[key])):
            raise EpisodeError(f'{key} is not finite after resampling')
    return obs, action.astype(np.float32)
