"""
Republish a recorded episode's joint commands at their original timing.

``ros2 run lam_ros replay_node --ros-args -p source:=DIR -p episode:=NAME`` (or
``lam-ros dataset replay DIR --episode NAME``) sends them to a robot's or ``sim_node``'s
command topic, as a ``Float64MultiArray`` (forward_command_controller) or a one-point
``JointTrajectory``. ``lam_ros.data.bags.replay.ReplayPlan`` decides when it may start (a
subscriber, and an arm close to the first command) and what is due; this node publishes.

Before playing, a recorded scene (``dataset.yaml``'s seed of the episode) is restored by
setting ``restore_seed`` on ``scene_node`` (``sim_node``); where no simulator answers (a real
robot) the node warns that the scene is the operator's to set up. After playing, it reports
the tracking error between the recorded and the replayed joint states.
"""

from __future__ import annotations

from dataclasses import dataclass
import time
from typing import Any, Optional

from lam_ros.data.bags.replay import (
    load_recording, Recording, ReplayPlan, ReplaySettings, tracking_error)
from lam_ros.nodes.common import (
    CommandOutput, declare_config, NodeFailed, positions_by_name, run_node, STATE_SUB_QOS)
import numpy as np
from rcl_interfaces.srv import SetParameters
import rclpy
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.task import Future
from sensor_msgs.msg import JointState


@dataclass
class ReplayConfig(ReplaySettings):
    """Parameters of the replay node (the start rules and speed, then the ROS side)."""

    source: str = ''
    """Recorder output dir, folder of bags or one bag (when the node loads the episode)."""
    episode: str = ''
    """Episode (bag directory) name to replay from ``source``."""
    mapping: str = ''
    """Topic mapping YAML; empty: the dataset's own topics."""
    command_topic: str = ''
    """Topic the commands are published on; empty: the recording's command topic."""
    command_interface: str = 'forward'
    """forward (std_msgs/Float64MultiArray) or trajectory (JointTrajectory)."""
    joint_state_topic: str = ''
    """State compared with the first command and the recording; empty: the recording's."""
    restore_scene: bool = True
    """Restore the recorded scene first (the episode's seed, through scene_node's restore_seed
    parameter); without a simulator (a real robot) it warns and plays in the scene there is."""
    scene_node: str = '/sim_node'
    """Simulator node whose restore_seed parameter restarts a recorded episode's scene."""
    scene_timeout_s: float = 5.0
    """How long to look for scene_node before replaying without restoring (s); once a robot
    subscribes to the commands and no such node is in the graph, one second is enough."""


class ReplayNode(Node):
    """Plays one episode's command stream; ``finished`` completes with the count sent."""

    def __init__(self, plan: Optional[ReplayPlan] = None,
                 recording: Optional[Recording] = None, **overrides: Any) -> None:
        """Play ``plan`` (of ``recording``), or load the ``source``/``episode`` parameters'."""
        super().__init__('replay_node', parameter_overrides=[
            Parameter(k, value=v) for k, v in overrides.items()])
        cfg = self.config = declare_config(self, ReplayConfig())
        self._standalone = plan is None  # then the node reports; else its caller does
        if plan is None:
            if not cfg.source or not cfg.episode:
                raise ValueError('set the source and episode parameters (a recorded dataset '
                                 'and the episode to replay)')
            from lam_ros.data.bags.reader import TopicMapping
            recording = load_recording(cfg.source, cfg.episode, TopicMapping.from_yaml(
                cfg.mapping) if cfg.mapping else None)
            plan = ReplayPlan(recording.times_ns, recording.commands,
                              recording.mapping.joint_names, cfg)
        if recording is not None:
            cfg.command_topic = cfg.command_topic or recording.mapping.command_topic
            cfg.joint_state_topic = cfg.joint_state_topic or recording.mapping.joint_state_topic
        self.plan, self.recording = plan, recording
        self.report: dict = {'scene': 'not restored', 'tracking': None}
        """What happened: ``scene`` (how the scene was set up), ``tracking`` (the error)."""
        self.output = CommandOutput(self, cfg.command_interface, cfg.command_topic,
                                    plan.joint_names, plan.point_time_s)
        self._state: Optional[np.ndarray] = None
        self._track: tuple = ([], [])
        self.create_subscription(JointState, cfg.joint_state_topic or '/joint_states',
                                 self._on_state, STATE_SUB_QOS)
        self.finished = Future()
        self._created = time.monotonic()
        self._start: Optional[float] = None
        self._scene_call: Any = None
        self._scene_client = None
        if recording is not None and cfg.restore_scene:
            self._scene_client = self.create_client(
                SetParameters, f'{cfg.scene_node.rstrip("/")}/set_parameters')
        self._timer = self.create_timer(0.002, self._tick)

    def _on_state(self, msg: JointState) -> None:
        try:
            self._state = positions_by_name(msg, self.plan.joint_names)
        except ValueError as exc:
            self._fail(f'joint state on {self.config.joint_state_topic} is unusable: {exc}')
        if self._start is not None and not self.finished.done():
            self._track[0].append(time.monotonic() - self._start)
            self._track[1].append(self._state)

    def _fail(self, reason: str) -> None:
        # Raised once; whoever runs the node prints it (run_node, lam-ros dataset replay).
        self._timer.cancel()
        raise NodeFailed(reason)

    def _restoring_scene(self) -> bool:
        """Drive the scene restore; return True while it is still under way."""
        scene = self.recording.scene if self.recording is not None else None
        node = self.config.scene_node
        if self._scene_call is None:
            if scene is None or scene.get('seed') is None:
                self._warn_scene(f'{self.config.episode or "the episode"} has no recorded '
                                 'scene (a real robot, or recorded before scenes were stored): '
                                 'replaying in the scene there is now')
                return False
            if not self._scene_client.service_is_ready():
                waited = time.monotonic() - self._created
                # Who takes the commands, once discovery has named them: no simulator there
                # means a robot, and no reason to wait the whole timeout.
                takers = {f'{i.node_namespace.rstrip("/")}/{i.node_name}' for i in
                          self.get_subscriptions_info_by_topic(self.output.topic)}
                robot_only = waited > 1.0 and takers and node not in takers and \
                    not any('_NODE_NAME_UNKNOWN_' in t for t in takers)
                if waited < self.config.scene_timeout_s and not robot_only:
                    return True
                pose = ', '.join(f'{v:.3f}' for v in (scene.get('object_pose') or [])[:3])
                self._warn_scene(f'no simulator at {node} to restore the recorded scene (a '
                                 f'real robot?): set it up by hand; the object started at '
                                 f'[{pose}] m')
                return False
            request = SetParameters.Request(parameters=[Parameter(
                'restore_seed', value=int(scene['seed'])).to_parameter_msg()])
            self._scene_call = self._scene_client.call_async(request)
            return True
        if not self._scene_call.done():
            return True
        results = self._scene_call.result().results
        if not results or not results[0].successful:
            reason = results[0].reason if results else 'no answer'
            self._warn_scene(f'{node} refused to restore seed {scene["seed"]}: {reason}')
        else:
            self.report['scene'] = f'restored (seed {scene["seed"]})'
            self.get_logger().info(f'restored the recorded scene on {node} (seed '
                                   f'{scene["seed"]})')
            self._state = None  # the arm moved: wait for a state of the restored scene
        self._created = time.monotonic()
        return False

    def _warn_scene(self, text: str) -> None:
        self.report['scene'] = 'not restored'
        self.get_logger().warning(text)

    def _tick(self) -> None:
        if self.finished.done():
            return
        if self._scene_client is not None:
            if self._restoring_scene():
                return
            self.destroy_client(self._scene_client)
            self._scene_client = None
        if self._start is None:
            ready, error = self.plan.start_check(time.monotonic() - self._created,
                                                 self.output.pub.get_subscription_count(),
                                                 self._state)
            if error:
                self._fail(error)
            if not ready:
                return
            self._start = time.monotonic()
            self.get_logger().info(f'replaying {len(self.plan.commands)} commands on '
                                   f'{self.output.topic}')
        for command in self.plan.due(time.monotonic() - self._start):
            self.output.publish(command)
        if self.plan.done and time.monotonic() - self._start >= self.plan.times_s[-1] + \
                self.plan.point_time_s:
            self._timer.cancel()
            if self.recording is not None:
                self.report['tracking'] = tracking_error(
                    self.recording, *self._track, speed=self.plan.settings.speed)
                if self._standalone:
                    self.get_logger().info(
                        f'tracking error: {describe_tracking(self.report)}')
            self.finished.set_result(self.plan.sent)


def describe_tracking(report: dict) -> str:
    """Return the tracking error of a replay report as one phrase."""
    err = report.get('tracking')
    if not err:
        return 'n/a (no joint states to compare)'
    return (f'RMS {err["rms"]:.4f}, max {err["max"]:.4f} ({err["worst_joint"]}) rad or m '
            f'over {err["samples"]} recorded states')


def replay(recording: Recording, **parameters: Any) -> tuple:
    """
    Play a recording over ROS 2 (initialising rclpy if needed); return (sent, report).

    ``parameters`` are the node's parameters; ``report`` says whether the scene was restored
    and the tracking error. Raises RuntimeError when the node refuses or gives up, with the
    reason.
    """
    settings = ReplaySettings(**{k: parameters[k] for k in (
        'speed', 'check_start_state', 'max_start_deviation', 'wait_timeout_s')
        if k in parameters})
    plan = ReplayPlan(recording.times_ns, recording.commands, recording.mapping.joint_names,
                      settings)
    owns_context = not rclpy.ok()
    if owns_context:
        rclpy.init()
    node = None
    try:
        node = ReplayNode(plan, recording, **parameters)
        rclpy.spin_until_future_complete(node, node.finished)
        # Give reliable delivery of the last commands a moment before the node goes away.
        end = time.monotonic() + 0.2
        while time.monotonic() < end:
            rclpy.spin_once(node, timeout_sec=0.02)
        return plan.sent, node.report
    finally:
        if node is not None:
            node.destroy_node()
        if owns_context and rclpy.ok():
            rclpy.shutdown()


def main(args: Optional[list] = None) -> int:
    """Replay the episode named by the ``source`` and ``episode`` parameters, then exit."""
    return run_node(ReplayNode, args, configs=[('', ReplayConfig())])


if __name__ == '__main__':
    raise SystemExit(main())
