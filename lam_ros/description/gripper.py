"""
The gripper model: how a robot's gripper appears in the command / action vector.

Four kinds, as robots have them (``gripper: kind:`` in the robot description):

- ``finger``: a position-controlled finger joint (Panda): the action entry is the finger's
  position (m per finger); ``mimic_joints`` (the other finger) follow it.
- ``drive``: one drive joint with mimic joints (xArm, Robotiq style): the action entry is
  the drive joint's position (rad or m); every mimic joint follows as ``multiplier * drive``.
- ``binary``: an open / close command (pneumatic, vacuum, on/off servo): the action entry is
  1.0 (open) or 0.0 (closed); the controller drives ``joint`` to ``open`` or ``closed``
  (anything at or above 0.5 means open).
- ``none``: no gripper; the action vector holds the arm joints only.

ROS-free, numpy-free: the simulator, teleop, the dataset builder and the policy read it.
"""

from dataclasses import dataclass
from typing import Dict, Tuple

GRIPPER_KINDS = ('finger', 'drive', 'binary', 'none')
"""The gripper kinds a description may name."""


@dataclass(frozen=True)
class GripperSpec:
    """How the gripper maps onto the joints and the action vector (see the module doc)."""

    joint: str = ''
    """Commanded gripper joint, one of ``joint_names`` ('' for kind ``none``)."""
    open: float = 0.0  # noqa: A003 - the YAML key; the builtin is never needed here
    """Position of ``joint`` when the gripper is fully open (m or rad)."""
    closed: float = 0.0
    """Position of ``joint`` when the gripper is fully closed (m or rad)."""
    mimic_joints: Tuple[str, ...] = ()
    """Joints that follow ``joint`` (published on the joint states, never commanded)."""
    mimic_multipliers: Tuple[float, ...] = ()
    """``mimic = multiplier * joint`` per mimic joint; empty means 1.0 for each."""
    kind: str = 'finger'
    """``finger``, ``drive``, ``binary`` or ``none``."""
    finger_links: Tuple[str, ...] = ()
    """Links that touch a grasped object (the simulator's grasp test); empty: the links of
    ``joint`` and the mimic joints."""
    sim_pad_friction: float = 0.0
    """Simulator only: friction of the ``finger_links`` with anchored contacts (pads that do
    not creep, for mesh pads that touch a cube at a few points); 0: PyBullet's plain
    friction 1.0."""

    def __post_init__(self) -> None:
        """Check the kind, the joint and the multipliers fit together."""
        object.__setattr__(self, 'mimic_joints', tuple(str(n) for n in self.mimic_joints))
        object.__setattr__(self, 'finger_links', tuple(str(n) for n in self.finger_links))
        mult = tuple(float(m) for m in self.mimic_multipliers) or (1.0,) * len(self.mimic_joints)
        object.__setattr__(self, 'mimic_multipliers', mult)
        object.__setattr__(self, 'open', float(self.open))
        object.__setattr__(self, 'closed', float(self.closed))
        object.__setattr__(self, 'sim_pad_friction', float(self.sim_pad_friction))
        if not self.sim_pad_friction >= 0.0:
            raise ValueError(f'gripper sim_pad_friction must be >= 0, got '
                             f'{self.sim_pad_friction}')
        if self.kind not in GRIPPER_KINDS:
            raise ValueError(f'gripper kind {self.kind!r} is not one of {list(GRIPPER_KINDS)}')
        if self.kind == 'none':
            if self.joint or self.mimic_joints:
                raise ValueError("gripper kind 'none' takes no joint and no mimic_joints")
        elif not self.joint:
            raise ValueError(f'gripper kind {self.kind!r} needs its commanded joint')
        if len(mult) != len(self.mimic_joints):
            raise ValueError(f'gripper mimic_multipliers needs one value per mimic joint '
                             f'{list(self.mimic_joints)}, got {list(mult)}')
        if self.kind != 'none' and self.open == self.closed:
            raise ValueError(f'gripper open and closed positions must differ, both are '
                             f'{self.open}')

    @property
    def commanded(self) -> bool:
        """Whether the action vector has a gripper entry."""
        return self.kind != 'none'

    @property
    def open_m(self) -> float:
        """Alias of ``open`` (finger grippers: m per finger)."""
        return self.open

    @property
    def closed_m(self) -> float:
        """Alias of ``closed``."""
        return self.closed

    @property
    def width_joints(self) -> Tuple[str, ...]:
        """
        Joints whose positions sum to the ``gripper_width`` observation.

        A finger gripper sums its fingers (the opening in m); a drive or binary gripper
        reports its commanded joint's position; no gripper, nothing.
        """
        if self.kind == 'finger':
            return (self.joint,) + self.mimic_joints
        return (self.joint,) if self.commanded else ()

    @property
    def action_range(self) -> Tuple[float, float]:
        """(lowest, highest) value of the gripper's action entry."""
        if self.kind == 'binary':
            return (0.0, 1.0)
        return (min(self.open, self.closed), max(self.open, self.closed))

    def action(self, open_fraction: float) -> float:
        """Return the action entry that opens the gripper by a fraction: 0 closed, 1 open."""
        frac = min(max(float(open_fraction), 0.0), 1.0)
        if self.kind == 'binary':
            return 1.0 if frac >= 0.5 else 0.0
        return self.closed + frac * (self.open - self.closed)

    def open_fraction(self, action: float) -> float:
        """Return the open fraction (0 .. 1) an action entry asks for."""
        if self.kind == 'binary':
            return 1.0 if float(action) >= 0.5 else 0.0
        frac = (float(action) - self.closed) / (self.open - self.closed)
        return min(max(frac, 0.0), 1.0)

    def joint_position(self, action: float) -> float:
        """Return the position of ``joint`` an action entry drives it to."""
        if self.kind == 'binary':
            return self.open if float(action) >= 0.5 else self.closed
        return float(action)

    def mimic_positions(self, joint_position: float) -> Tuple[float, ...]:
        """Return the mimic joints' positions that follow ``joint_position``."""
        return tuple(m * float(joint_position) for m in self.mimic_multipliers)

    def to_dict(self) -> Dict[str, object]:
        """Return the YAML mapping of this gripper."""
        return {'kind': self.kind, 'joint': self.joint, 'open': self.open,
                'closed': self.closed, 'mimic_joints': list(self.mimic_joints),
                'mimic_multipliers': list(self.mimic_multipliers),
                'finger_links': list(self.finger_links),
                'sim_pad_friction': self.sim_pad_friction}


_ALIASES = {'open_m': 'open', 'closed_m': 'closed'}


def gripper_from_dict(data: Dict[str, object], where: str) -> GripperSpec:
    """Build a :class:`GripperSpec` from YAML (``open_m``/``closed_m`` read as open/closed)."""
    value = {_ALIASES.get(k, k): v for k, v in dict(data).items()}
    known = set(GripperSpec.__dataclass_fields__)
    unknown = sorted(set(value) - known)
    if unknown:
        raise ValueError(f'{where}: gripper: unknown keys {unknown}; known: {sorted(known)}')
    kind = value.get('kind', 'finger')
    missing = [k for k in ('joint', 'open', 'closed') if k not in value and kind != 'none']
    if missing:
        raise ValueError(f'{where}: gripper: missing keys {missing}')
    for key in ('mimic_joints', 'mimic_multipliers', 'finger_links'):
        value[key] = tuple(value.get(key) or ())
    try:
        return GripperSpec(**value)
    except (TypeError, ValueError) as err:
        raise ValueError(f'{where}: {err}') from err
