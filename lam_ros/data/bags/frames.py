"""
Poses into the robot base frame: the mapping's declared transforms or the bag's ``/tf_static``.

Every pose the package uses is in the robot description's base frame. A bag's
``PoseStamped`` messages say their own frame in ``header.frame_id``; a pose in another frame is
moved into the base frame by a fixed transform, taken from the topic mapping's
``frame_transforms`` (the user's word comes first) or else from the bag's ``/tf_static``
(``tf2_msgs/msg/TFMessage``, chained through as many static frames as needed). A frame that
neither connects to the base is refused, never taken as the base. Dynamic ``/tf`` is not used:
a pose frame that moves relative to the base cannot be corrected by one transform.

Transforms are 7 floats ``[x, y, z, qw, qx, qy, qz]``: the pose of the child frame in the
parent frame (metres; w-first quaternion, as every pose in the package).
"""

from collections import deque
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np
from transforms3d import quaternions

TF_STATIC_TOPIC = '/tf_static'
TF_MESSAGE = 'tf2_msgs/msg/TFMessage'

Transform = np.ndarray
"""``[x, y, z, qw, qx, qy, qz]``: the pose of a child frame in its parent frame."""

IDENTITY = np.array([0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0])


class FrameError(ValueError):
    """A pose frame cannot be brought into the base frame; the message says how to fix it."""


def clean_frame(frame_id: str) -> str:
    """Return a frame id without the leading '/' that ROS 1 style names carry."""
    return str(frame_id).strip().lstrip('/')


def as_transform(value: Any, what: str) -> Transform:
    """Return ``value`` as a checked transform (7 finite floats, unit quaternion)."""
    try:
        array = np.asarray(value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise ValueError(f'{what} must be [x, y, z, qw, qx, qy, qz] (m; w-first quaternion), '
                         f'got {value!r}') from exc
    if array.size != 7 or not np.all(np.isfinite(array)):
        raise ValueError(f'{what} must be 7 finite floats [x, y, z, qw, qx, qy, qz] (m; '
                         f'w-first quaternion), got {value!r}')
    norm = float(np.linalg.norm(array[3:]))
    if abs(norm - 1.0) > 1e-3:
        raise ValueError(f'{what} has a quaternion of norm {norm:.4f}; expected a unit '
                         'quaternion [qw, qx, qy, qz]')
    array[3:] /= norm
    return array


def compose(a: Transform, b: Transform) -> Transform:
    """Return ``a * b``: the pose ``b`` (given in the child frame of ``a``) in ``a``'s parent."""
    position = a[:3] + quaternions.rotate_vector(b[:3], a[3:])
    rotation = quaternions.qmult(a[3:], b[3:])
    return np.concatenate([position, rotation / np.linalg.norm(rotation)])


def invert(a: Transform) -> Transform:
    """Return the inverse transform of ``a``."""
    conj = quaternions.qconjugate(a[3:])
    return np.concatenate([-quaternions.rotate_vector(a[:3], conj), conj])


def apply(transform: Transform, poses: np.ndarray) -> np.ndarray:
    """Return the (N, 7) ``poses`` given in a frame, expressed in that frame's parent."""
    rot = quaternions.quat2mat(transform[3:])
    positions = poses[:, :3] @ rot.T + transform[:3]
    rotations = np.stack([quaternions.qmult(transform[3:], q) for q in poses[:, 3:]]) \
        if len(poses) else np.zeros((0, 4))
    return np.concatenate([positions, rotations], axis=1)


def static_edges(messages: Iterable[Any]) -> List[Tuple[str, str, Transform]]:
    """Return ``(parent, child, transform)`` of every transform in ``TFMessage`` messages."""
    edges = []
    for msg in messages:
        for tf in msg.transforms:
            t, r = tf.transform.translation, tf.transform.rotation
            value = as_transform([t.x, t.y, t.z, r.w, r.x, r.y, r.z],
                                 f'/tf_static {tf.header.frame_id} -> {tf.child_frame_id}')
            edges.append((clean_frame(tf.header.frame_id), clean_frame(tf.child_frame_id),
                          value))
    return edges


def chain(base: str, frame: str, edges: Sequence[Tuple[str, str, Transform]]
          ) -> Optional[Transform]:
    """Return the pose of ``frame`` in ``base`` through the static ``edges``, or None."""
    links: Dict[str, List[Tuple[str, Transform]]] = {}
    for parent, child, value in edges:
        links.setdefault(parent, []).append((child, value))
        links.setdefault(child, []).append((parent, invert(value)))
    found = {base: IDENTITY}
    queue = deque([base])
    while queue:
        here = queue.popleft()
        if here == frame:
            return found[here]
        for there, value in links.get(here, []):
            if there not in found:
                found[there] = compose(found[here], value)
                queue.append(there)
    return None


class BaseFrame:
    """Brings poses stamped in any known frame into the robot base frame."""

    def __init__(self, base: str, declared: Optional[Mapping[str, Any]] = None,
                 tf_static: Sequence[Tuple[str, str, Transform]] = ()) -> None:
        """Use the mapping's ``declared`` transforms first, then the bag's static tree."""
        self.base = clean_frame(base)
        self.declared = {clean_frame(k): as_transform(v, f'frame_transforms[{k!r}]')
                         for k, v in (declared or {}).items()}
        self.tf_static = list(tf_static)

    def transform_of(self, frame_id: str, topic: str) -> Optional[Transform]:
        """
        Return the pose of ``frame_id`` in the base frame; None when it is the base itself.

        Raises :class:`FrameError` naming the topic, both frames and the fixes.
        """
        frame = clean_frame(frame_id)
        if frame in self.declared:
            return self.declared[frame]
        if frame == self.base and frame:
            return None
        found = chain(self.base, frame, self.tf_static) if frame else None
        if found is not None:
            return found
        label = repr(frame) if frame else 'an empty frame_id'
        where = (f'/tf_static has no path from {self.base!r} to it'
                 if self.tf_static else 'the bag has no /tf_static')
        raise FrameError(f'{topic} poses are in {label}, not the base frame {self.base!r}, and '
                         f'{where}; declare the pose of {frame!r} in {self.base!r} in the mapping '
                         f'(frame_transforms: {{{frame!r}: [x, y, z, qw, qx, qy, qz]}}) or '
                         'record /tf_static')

    def to_base(self, frame_id: str, topic: str, poses: np.ndarray) -> np.ndarray:
        """Return (N, 7) ``poses`` stamped ``frame_id`` in the base frame."""
        transform = self.transform_of(frame_id, topic)
        return poses if transform is None else apply(transform, poses)
