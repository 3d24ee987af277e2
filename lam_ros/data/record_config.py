"""Configuration of a recording session (mirrored into the recorder node's ROS parameters)."""

from dataclasses import dataclass, field
from typing import Dict, List

from lam_ros.data import messages

PANDA_JOINTS = [f'panda_joint{i}' for i in range(1, 8)] + ['panda_finger_joint1']


@dataclass
class RecorderConfig:
    """What to record, where, and how the operator controls episodes."""

    output_dir: str = 'lam_ros_demos'
    """Dataset directory (created if missing); a later session appends episodes to it."""
    robot: str = 'panda'
    """Robot name stored in dataset.yaml; a directory holds one robot's episodes."""
    task: str = 'lift'
    """Task name stored in dataset.yaml (e.g. lift, pick_place)."""
    joint_names: List[str] = field(default_factory=lambda: list(PANDA_JOINTS))
    """Commanded joints in the order of the command vector (the action order)."""
    topics: List[str] = field(default_factory=lambda: [
        '/joint_states', '/object_pose', '/goal_pose', '/task_success'])
    """Observation topics to record (absolute names)."""
    topic_types: List[str] = field(default_factory=lambda: [
        messages.JOINT_STATE, messages.POSE_STAMPED, messages.POSE_STAMPED, messages.BOOL])
    """Message type of each entry of ``topics``, e.g. sensor_msgs/msg/JointState."""
    command_topic: str = '/forward_position_controller/commands'
    """The command that reaches the robot: the recorded action label."""
    command_type: str = messages.FLOAT64_ARRAY
    """std_msgs/msg/Float64MultiArray or trajectory_msgs/msg/JointTrajectory."""
    success_topic: str = '/task_success'
    """std_msgs/msg/Bool; its last value in an episode is the episode's outcome ('' = none)."""
    best_effort_topics: List[str] = field(default_factory=list)
    """Topics whose publishers are best-effort (subscribed best-effort, may drop)."""
    control_rate_hz: float = 20.0
    """Nominal rate of the command stream, stored in dataset.yaml."""
    state_rate_hz: float = 100.0
    """Nominal rate of the joint states, stored in dataset.yaml."""
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
        if not self.joint_names:
            raise ValueError('joint_names is empty; expected the commanded joints in order')
        for name in ('control_rate_hz', 'state_rate_hz', 'flush_interval_s', 'status_rate_hz',
                     'queue_depth', 'image_queue_depth'):
            if getattr(self, name) <= 0:
                raise ValueError(f'{name} must be > 0, got {getattr(self, name)}')

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
