"""
Configuration of a recording session (mirrored into the recorder node's ROS parameters).

Empty joints, topics and rate mean the robot description's (``config/robots/<robot>.yaml``);
:meth:`RecorderConfig.resolved` fills them in.
"""

from dataclasses import dataclass, field, replace
from typing import Dict, List

from lam_ros.data import messages
from lam_ros.description import load_robot, RobotDescription, TOPIC_TYPES

RECORDED_ROLES = ('joint_state', 'object_pose', 'goal_pose', 'success')
"""Observation topic roles recorded unless ``topics`` says otherwise (the command on top)."""

LOG_TIMES = ('header', 'receipt')
"""Values of ``log_time``: header stamps (and arrivals on their clock), or callback time."""


@dataclass
class RecorderConfig:
    """What to record, where, and how the operator controls episodes."""

    output_dir: str = 'lam_ros_demos'
    """Dataset directory (created if missing); a later session appends episodes to it."""
    robot: str = ''
    """Robot description (config/robots/<name>.yaml or a path; empty: the default robot); its
    name is stored in dataset.yaml, and a directory holds one robot's episodes."""
    task: str = 'lift'
    """Task name stored in dataset.yaml (e.g. lift, pick_place)."""
    joint_names: List[str] = field(default_factory=list)
    """Commanded joints in the order of the command vector (the action order); empty: the
    robot's."""
    topics: List[str] = field(default_factory=list)
    """Observation topics to record (absolute names); empty: the robot's joint state, object
    pose, goal pose and success topics."""
    topic_types: List[str] = field(default_factory=list)
    """Message type of each entry of ``topics``, e.g. sensor_msgs/msg/JointState."""
    command_topic: str = ''
    """The command that reaches the robot: the recorded action label; empty: the robot's
    command (or trajectory command) topic."""
    command_type: str = messages.FLOAT64_ARRAY
    """std_msgs/msg/Float64MultiArray or trajectory_msgs/msg/JointTrajectory."""
    success_topic: str = ''
    """std_msgs/msg/Bool; its last value in an episode is the episode's outcome; empty: the
    robot's."""
    scene_topic: str = '/sim_node/scene'
    """std_msgs/msg/String (JSON) with the simulated episode's seed and initial poses, which
    dataset.yaml stores per episode so a replay can restore the scene; empty: none."""
    best_effort_topics: List[str] = field(default_factory=list)
    """Topics whose publishers are best-effort (subscribed best-effort, may drop)."""
    control_rate_hz: float = 0.0
    """Nominal rate of the command stream, stored in dataset.yaml; 0: the robot's."""
    state_rate_hz: float = 100.0
    """Nominal rate of the joint states, stored in dataset.yaml."""
    required_topics: List[str] = field(default_factory=list)
    """Topics that must have delivered a message within ``required_max_age_s`` for
    ~/start_episode to start; an episode stopped without them is flagged; empty: the
    robot's joint state."""
    required_max_age_s: float = 1.0
    """How recent (s) the last message of each required topic must be at start; 0: start
    without checking."""
    start_wait_s: float = 5.0
    """How long ~/start_episode waits (s) for silent required topics before refusing."""
    log_time: str = 'header'
    """Time each message is logged at in the bag: ``header`` (its header stamp: simulated time
    under a sim; messages without a header, and commands, at their DDS arrival placed on the
    clock of ``time_reference_topic``; an episode holds what arrived between start and stop,
    however far the recorder lags) or ``receipt`` (the node clock when the callback runs, as
    ros2 bag record does: right only while the recorder keeps up)."""
    time_reference_topic: str = ''
    """Stamped topic whose header stamps are the clock headerless messages are placed on;
    empty: the robot's joint state topic."""
    stop_wait_s: float = 20.0
    """Longest wait (wall s) in ~/stop_episode for the messages that arrived before the stop
    to be processed (log_time header); then the episode is saved with what was processed.
    Below demo_runner_node's service_timeout_s (30 s), so a stop answers before it gives up."""
    flush_interval_s: float = 0.5
    """Longest time recorded data waits in memory; a crash loses at most this much."""
    queue_depth: int = 2000
    """Subscription history depth; large so a recorder that falls behind queues, not drops."""
    image_queue_depth: int = 60
    """History depth of Image subscriptions (bounds queued frames: 60 VGA frames ~ 55 MB)."""
    joy_topic: str = ''
    """sensor_msgs/msg/Joy topic whose buttons start/stop/discard episodes ('' = off)."""
    joy_start_button: int = 0
    """Joy button index that starts an episode."""
    joy_stop_button: int = 1
    """Joy button index that stops (saves) the episode."""
    joy_discard_button: int = 2
    """Joy button index that discards the episode."""
    status_rate_hz: float = 2.0
    """Rate of the JSON status on ~/status."""

    def __post_init__(self) -> None:
        """Check that topic lists line up and types are known."""
        if not str(self.output_dir).strip():
            raise ValueError('output_dir is empty; give the dataset directory, e.g. '
                             'output_dir:=~/lam_ros_demos')
        if len(self.topics) != len(self.topic_types):
            raise ValueError(f'topics ({len(self.topics)}) and topic_types '
                             f'({len(self.topic_types)}) must have the same length: one type '
                             'per topic')
        for topic, msgtype in self.topic_map().items():
            if msgtype not in messages.TYPESTORE.types:
                raise ValueError(f'unknown message type {msgtype!r} for {topic}; expected e.g. '
                                 f'{messages.JOINT_STATE}')
        if self.command_type not in (messages.FLOAT64_ARRAY, messages.JOINT_TRAJECTORY):
            raise ValueError(f'command_type must be {messages.FLOAT64_ARRAY} or '
                             f'{messages.JOINT_TRAJECTORY}, got {self.command_type!r}')
        if self.control_rate_hz < 0:
            raise ValueError(f"control_rate_hz must be > 0 (0: the robot's), got "
                             f'{self.control_rate_hz}')
        for name in ('state_rate_hz', 'flush_interval_s', 'status_rate_hz',
                     'queue_depth', 'image_queue_depth'):
            if getattr(self, name) <= 0:
                raise ValueError(f'{name} must be > 0, got {getattr(self, name)}')
        if self.log_time not in LOG_TIMES:
            raise ValueError(f'log_time must be one of {LOG_TIMES}, got {self.log_time!r}')
        if not self.stop_wait_s > 0:
            raise ValueError(f'stop_wait_s must be > 0 seconds, got {self.stop_wait_s}')
        if self.required_max_age_s < 0:
            raise ValueError(f'required_max_age_s must be >= 0 (0: no check), got '
                             f'{self.required_max_age_s}')

    @property
    def description(self) -> RobotDescription:
        """Return the robot description named by ``robot``."""
        return load_robot(self.robot)

    def resolved(self) -> 'RecorderConfig':
        """Return a copy with every empty setting filled from the robot description."""
        robot = self.description
        topics, types = self.topics, self.topic_types
        if not topics:
            topics = [robot.topics.topic_of(role) for role in RECORDED_ROLES]
            types = [TOPIC_TYPES[role] for role in RECORDED_ROLES]
        return replace(
            self, robot=robot.name, joint_names=list(self.joint_names or robot.joint_names),
            topics=list(topics), topic_types=list(types),
            command_topic=self.command_topic or (
                robot.topics.trajectory_command if self.command_type == messages.JOINT_TRAJECTORY
                else robot.topics.command),
            success_topic=self.success_topic or robot.topics.success,
            control_rate_hz=self.control_rate_hz or robot.control_rate_hz,
            required_topics=list(self.required_topics
                                 or [robot.topics.topic_of('joint_state')]),
            time_reference_topic=self.time_reference_topic
            or robot.topics.topic_of('joint_state'))

    def topic_map(self) -> Dict[str, str]:
        """Return every recorded topic -> message type, the command topic included."""
        out = dict(zip(self.topics, self.topic_types))
        if self.command_topic:
            out[self.command_topic] = self.command_type
        return out

    def rates(self) -> Dict[str, float]:
        """Return the nominal rates stored in dataset.yaml."""
        return {'control_rate_hz': float(self.control_rate_hz),
                'state_rate_hz': float(self.state_rate_hz)}
