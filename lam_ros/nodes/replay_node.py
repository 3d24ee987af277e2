"""
Republish a recorded episode's joint commands at their original timing.

``ros2 run lam_ros replay_node --ros-args -p source:=DIR -p episode:=NAME`` (or
``lam-ros dataset replay DIR --episode NAME``) sends them to a robot's or ``sim_node``'s
command topic, as a ``Float64MultiArray`` (forward_command_controller) or a one-point
``JointTrajectory``. ``lam_ros.data.bags.replay.ReplayPlan`` decides when it may start (a
subscriber, and an arm close to the first command) and what is due; this node publishes.
"""

from __future__ import annotations

from dataclasses import dataclass
import time
from typing import Any, Optional, Sequence

from lam_ros.data.bags.replay import load_episode, ReplayPlan, ReplaySettings
from lam_ros.nodes.common import (CommandOutput, declare_config, NodeFailed, positions_by_name,
                                  run_node, STATE_SUB_QOS)
import numpy as np
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
    """State compared with the first command; empty: the recording's joint-state topic."""


class ReplayNode(Node):
    """Plays one episode's command stream; ``finished`` completes with the count sent."""

    def __init__(self, plan: Optional[ReplayPlan] = None, **overrides: Any) -> None:
        """Play ``plan``, or load the ``source``/``episode`` parameters' episode."""
        super().__init__('replay_node', parameter_overrides=[
            Parameter(k, value=v) for k, v in overrides.items()])
        cfg = self.config = declare_config(self, ReplayConfig())
        if plan is None:
            if not cfg.source or not cfg.episode:
                raise ValueError('set the source and episode parameters (a recorded dataset '
                                 'and the episode to replay)')
            from lam_ros.data.bags.reader import TopicMapping
            times_ns, commands, mapping = load_episode(
                cfg.source, cfg.episode, TopicMapping.from_yaml(cfg.mapping) if cfg.mapping
                else None)
            plan = ReplayPlan(times_ns, commands, mapping.joint_names, cfg)
            cfg.command_topic = cfg.command_topic or mapping.command_topic
            cfg.joint_state_topic = cfg.joint_state_topic or mapping.joint_state_topic
        self.plan = plan
        self.output = CommandOutput(self, cfg.command_interface, cfg.command_topic,
                                    plan.joint_names, plan.point_time_s)
        self._state: Optional[np.ndarray] = None
        if plan.settings.check_start_state:
            self.create_subscription(JointState, cfg.joint_state_topic or '/joint_states',
                                     self._on_state, STATE_SUB_QOS)
        self.finished = Future()
        self._created = time.monotonic()
        self._start: Optional[float] = None
        self._timer = self.create_timer(0.002, self._tick)

    def _on_state(self, msg: JointState) -> None:
        try:
            self._state = positions_by_name(msg, self.plan.joint_names)
        except ValueError as exc:
            self._fail(f'joint state on {self.config.joint_state_topic} is unusable: {exc}')

    def _fail(self, reason: str) -> None:
        self._timer.cancel()
        self.get_logger().error(reason)
        raise NodeFailed(reason)

    def _tick(self) -> None:
        if self.finished.done():
            return
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
        if self.plan.done:
            self._timer.cancel()
            self.finished.set_result(self.plan.sent)


def replay(times_ns: np.ndarray, commands: np.ndarray, joint_names: Sequence[str],
           **parameters: Any) -> int:
    """
    Play commands over ROS 2 (initialising rclpy if needed); return how many were sent.

    ``parameters`` are the node's parameters. Raises RuntimeError when the node refuses or
    gives up, with the reason.
    """
    settings = ReplaySettings(**{k: parameters[k] for k in (
        'speed', 'check_start_state', 'max_start_deviation', 'wait_timeout_s')
        if k in parameters})
    plan = ReplayPlan(times_ns, commands, joint_names, settings)
    owns_context = not rclpy.ok()
    if owns_context:
        rclpy.init()
    node = None
    try:
        node = ReplayNode(plan, **parameters)
        rclpy.spin_until_future_complete(node, node.finished)
        # Give reliable delivery of the last commands a moment before the node goes away.
        end = time.monotonic() + 0.2
        while time.monotonic() < end:
            rclpy.spin_once(node, timeout_sec=0.02)
        return plan.sent
    finally:
        if node is not None:
            node.destroy_node()
        if owns_context and rclpy.ok():
            rclpy.shutdown()


def main(args: Optional[list] = None) -> int:
    """Replay the episode named by the ``source`` and ``episode`` parameters, then exit."""
    return run_node(ReplayNode, args)


if __name__ == '__main__':
    raise SystemExit(main())
