"""
A teleop session: one operator source behind the command gate, at the control rate (no ROS).

``teleop_node`` feeds joint states and device input in and publishes what :meth:`tick`
returns; everything between (re-anchoring after a reset, stale input and state, the command
gate) happens here, so it is tested without ROS.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Optional, Sequence

from lam_ros.control.gate import CommandGate, GateConfig
from lam_ros.description.robot import load_robot, RobotDescription
from lam_ros.teleop.sources import Source
import numpy as np

SOURCES = ('keyboard', 'joy', 'cartesian', 'leader', 'scripted')
CARTESIAN_SOURCES = ('keyboard', 'joy', 'cartesian')


@dataclass
class TeleopConfig:
    """Settings of a teleop session (the teleop node's parameters); empty: the robot's."""

    robot: str = ''
    """Robot description (config/robots/<name>.yaml or a path); empty: the default robot."""
    source: str = 'keyboard'
    """Operator: keyboard, joy, cartesian (twist topic), leader or scripted."""
    rate_hz: float = 0.0
    """Command rate (Hz); recorded demonstrations carry actions at this rate. 0: robot's."""
    command_interface: str = 'forward'
    """forward (Float64MultiArray, forward_command_controller) or trajectory (JointTrajectory)."""
    command_topic: str = ''
    """Command topic; empty: the robot's topic for the interface."""
    joint_state_topic: str = ''
    """Measured joint state of the robot; empty: the robot's."""
    joint_names: list[str] = field(default_factory=list)
    """Commanded joints in command order; empty: the robot's."""
    urdf_path: str = ''
    """Robot URDF for limits and IK; empty: the robot description's."""
    command_timeout_s: float = 0.5
    """Input older than this (s) is stale: the arm holds its last command."""
    state_timeout_s: float = 0.5
    """Joint states older than this (s) are stale: the arm holds its last command."""
    max_velocity_scale: float = 1.0
    """Fraction (0..1] of the URDF velocity limits a command may move at."""
    trajectory_point_time_s: float = 0.1
    """time_from_start of each JointTrajectory point (s), trajectory interface only."""
    base_frame: str = ''
    """Twist frame meaning the robot base (an empty frame_id means the same); empty: robot's."""
    ee_frame: str = ''
    """Twist frame meaning the tool itself; empty: the robot's tool frame."""
    twist_topic: str = '~/delta_twist_cmds'
    """TwistStamped input (cartesian source)."""
    gripper_topic: str = '~/gripper_cmd'
    """Float64 gripper open fraction, 0 closed .. 1 open (cartesian source)."""
    joy_topic: str = '/joy'
    """sensor_msgs/Joy input (joy source)."""
    leader_topic: str = '/leader/joint_states'
    """Leader arm JointState (leader source)."""
    object_pose_topic: str = ''
    """Object pose the scripted expert grasps; empty: the robot's."""
    goal_pose_topic: str = ''
    """Goal pose for the scripted expert (tasks with a goal); empty: the robot's."""
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

    def __post_init__(self) -> None:
        """Check the choices."""
        if self.source not in SOURCES or self.command_interface not in ('forward', 'trajectory'):
            raise ValueError(f'source must be one of {SOURCES} and command_interface forward '
                             f'or trajectory; got {self.source!r}, {self.command_interface!r}')
        if not 0 < self.max_velocity_scale <= 1 or self.rate_hz < 0:
            raise ValueError('max_velocity_scale must be in (0, 1] and rate_hz >= 0')
        if len(self.episode_services) != 4:
            raise ValueError('episode_services needs 4 Trigger service names: start, stop, '
                             'discard, new scene')

    def resolved(self) -> 'TeleopConfig':
        """Return a copy with every empty setting filled from the robot description."""
        robot = self.description
        topics = robot.topics
        command_topic = topics.command if self.command_interface == 'forward' \
            else topics.trajectory_command
        return replace(
            self, rate_hz=self.rate_hz or robot.control_rate_hz,
            joint_names=list(self.joint_names or robot.joint_names),
            urdf_path=self.urdf_path or robot.urdf_path(),
            base_frame=self.base_frame or robot.frames.base,
            ee_frame=self.ee_frame or robot.frames.tool,
            joint_state_topic=self.joint_state_topic or topics.joint_state,
            command_topic=self.command_topic or command_topic,
            object_pose_topic=self.object_pose_topic or topics.object_pose,
            goal_pose_topic=self.goal_pose_topic or topics.goal_pose)

    @property
    def description(self) -> RobotDescription:
        """Return the robot description named by ``robot``."""
        return load_robot(self.robot or None)

    def gate_config(self) -> GateConfig:
        """Return the command gate settings of this session."""
        return GateConfig(max_velocity_scale=self.max_velocity_scale,
                          state_timeout_s=self.state_timeout_s)


class TeleopSession:
    """Turns one source's targets into gated commands, one :meth:`tick` per control period."""

    def __init__(self, source: Source, gate: CommandGate) -> None:
        """Command through ``gate`` (whose rate is the tick rate) what ``source`` asks for."""
        self.source, self.gate = source, gate
        self.dt_s = 1.0 / gate.control_rate_hz
        self.q: Optional[np.ndarray] = None
        self.error = ''
        """The last reason a target was refused ('' when none)."""
        self._needs_sync = True
        self._last_tick_s: Optional[float] = None

    def on_state(self, now_s: float, q: Sequence[float]) -> bool:
        """Take a measured joint state in command order; False (see gate.reason) if bad."""
        if not self.gate.update_state(now_s, q):
            return False
        self.q = np.asarray(q, dtype=np.float64)
        return True

    def resync(self) -> None:
        """Re-anchor on the first joint state that arrives from now on (after a reset)."""
        self._needs_sync = True
        self.q = None
        self.source.stop()

    def tick(self, now_s: float) -> Optional[np.ndarray]:
        """Return this period's command, or None while there is nothing safe to publish."""
        if self.q is None:
            return None
        # Integrate over the time that really passed, so a late tick does not slow the arm,
        # but never over more than two periods, so a stall does not make it jump.
        elapsed = self.dt_s if self._last_tick_s is None else now_s - self._last_tick_s
        step_s = float(np.clip(elapsed, 0.25 * self.dt_s, 2.0 * self.dt_s))
        self._last_tick_s = now_s
        if self._needs_sync:
            self.source.sync(self.gate.limits.clamp_position(self.q))
            self.gate.resync()
            self._needs_sync = False
        target = None
        if self.gate.state_age_s(now_s) <= self.gate.config.state_timeout_s:
            try:
                target = self.source.target(now_s, step_s, self.q)
                self.error = ''
            except ValueError as err:
                self.error = str(err)
        return self.gate.step(now_s, target)


def build_source(cfg: TeleopConfig, limits: Any, sub_configs: dict) -> Source:
    """
    Build the source ``cfg.source`` with its device settings ``sub_configs``.

    ``sub_configs`` holds the sections the node declared: ``twist`` (TwistConfig) for the
    Cartesian sources, ``keyboard``, ``joy`` and ``leader`` for theirs.
    """
    from lam_ros.teleop import sources
    if cfg.source == 'leader':
        from lam_ros.teleop.leader import LeaderMapping
        return sources.LeaderSource(LeaderMapping(sub_configs['leader']), cfg.command_timeout_s)
    from lam_ros.sim.kinematics import ArmKinematics
    kinematics = ArmKinematics(cfg.urdf_path or None, robot=cfg.description)
    if cfg.source == 'scripted':
        from lam_ros.description.task import get_task
        from lam_ros.sim.expert import ExpertConfig, ScriptedExpert
        expert = ScriptedExpert(cfg.task, noise_std=cfg.expert_noise_std_m,
                                seed=None if cfg.expert_seed < 0 else cfg.expert_seed,
                                config=ExpertConfig(control_rate_hz=cfg.rate_hz),
                                kinematics=kinematics, robot=cfg.description)
        return sources.ScriptedSource(expert, get_task(cfg.task).pose_keys, cfg.state_timeout_s,
                                      cfg.reset_jump_m, bool(cfg.expert_waits_for))
    from lam_ros.teleop.cartesian import CartesianTeleop
    cartesian = CartesianTeleop(kinematics, limits, sub_configs['twist'],
                                robot=cfg.description)
    if cfg.source == 'keyboard':
        from lam_ros.teleop.keyboard import KeyboardTeleop
        return sources.KeyboardSource(cartesian, KeyboardTeleop(sub_configs['keyboard']),
                                      cfg.command_timeout_s, cfg.base_frame, cfg.ee_frame)
    return sources.CartesianSource(cartesian, cfg.command_timeout_s, cfg.base_frame,
                                   cfg.ee_frame)


def close_source(source: Source) -> None:
    """Release what a source holds (the kinematics client of the IK-based ones)."""
    kinematics = getattr(getattr(source, 'cartesian', None), 'kinematics', None) or \
        getattr(getattr(source, 'expert', None), 'kin', None)
    if kinematics is not None:
        kinematics.close()
