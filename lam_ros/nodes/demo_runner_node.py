"""
Record demonstrations hands-free: reset, start, wait for success or a timeout, stop; N times.

For each episode the runner calls ``/sim_node/reset``, ``/teleop_node/reset`` (so a
scripted operator re-anchors on the new scene), waits ``reset_settle_s`` and until the arm is
at rest in ``/joint_states`` (a teleop still holding the last episode's pose may have moved
it), ``/recorder_node/start_episode``, then
waits until ``/task_success`` turns true (the sim applies the task's hold times) plus
``settle_s``, or until ``episode_timeout_s``, and calls ``/recorder_node/stop_episode``
either way: the recorder stores the last ``/task_success`` value as the outcome, so an
episode that timed out is saved as a failure. After the last episode the node exits, which
ends ``ros2 launch lam_ros sim_record.launch.py episodes:=N``. Episode times follow the
node clock: simulated time with ``use_sim_time``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from lam_ros.nodes.common import declare_config, NodeFailed, run_node, STATE_SUB_QOS
from lam_ros.teleop.episodes import EpisodeFailed, EpisodeLoop, ServiceWait
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rclpy.task import Future
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, String
from std_srvs.srv import Trigger


@dataclass
class DemoRunnerConfig:
    """Settings of the hands-free demonstration runner."""

    episodes: int = 10
    """Number of episodes to record before the node exits (>= 1)."""
    episode_timeout_s: float = 60.0
    """Node-clock seconds after start_episode at which an unsuccessful episode is stopped."""
    settle_s: float = 0.5
    """Node-clock seconds recorded after /task_success turns true, before stopping."""
    reset_settle_s: float = 0.2
    """Node-clock seconds between the resets and start_episode (the teleop re-anchors)."""
    service_timeout_s: float = 30.0
    """Wall seconds to wait for a service to appear and to answer before giving up."""
    sim_reset_service: str = '/sim_node/reset'
    """Trigger service that draws a new scene; empty to skip."""
    teleop_reset_service: str = '/teleop_node/reset'
    """Trigger service that re-anchors the teleop on the new scene; empty to skip."""
    start_service: str = '/recorder_node/start_episode'
    """Recorder Trigger service that starts an episode."""
    stop_service: str = '/recorder_node/stop_episode'
    """Recorder Trigger service that saves an episode with its outcome."""
    success_topic: str = '/task_success'
    """std_msgs/Bool topic of the task outcome."""
    recorder_status_topic: str = '/recorder_node/status'
    """Recorder status (std_msgs/String); the first episode waits for one message, which
    the recorder sends once its clock runs (/clock under use_sim_time). Empty: no wait."""
    joint_state_topic: str = '/joint_states'
    """sensor_msgs/JointState whose velocities say when the arm is at rest; empty: no wait."""
    rest_speed_rad_s: float = 0.02
    """An episode starts once every joint is slower than this (rad/s or m/s); 0: no wait."""
    rest_timeout_s: float = 2.0
    """Node-clock seconds to wait for rest after reset_settle_s before starting anyway."""

    def __post_init__(self) -> None:
        """Reject counts and times the runner cannot work with."""
        if self.episodes < 1:
            raise ValueError(f'episodes must be >= 1, got {self.episodes} (0 in the launch file '
                             'means: do not start the runner)')
        for name in ('episode_timeout_s', 'service_timeout_s'):
            if not getattr(self, name) > 0:
                raise ValueError(f'{name} must be positive, got {getattr(self, name)}')
        for name in ('settle_s', 'reset_settle_s', 'rest_speed_rad_s', 'rest_timeout_s'):
            if getattr(self, name) < 0:
                raise ValueError(f'{name} must be >= 0, got {getattr(self, name)}')
        for name in ('start_service', 'stop_service', 'success_topic'):
            if not getattr(self, name):
                raise ValueError(f'{name} must name a service or topic, got an empty string')


class DemoRunnerNode(Node):
    """Calls the sim, teleop and recorder services to record ``episodes`` episodes, then ends."""

    ACTIONS = {'sim_reset': 'sim_reset_service', 'teleop_reset': 'teleop_reset_service',
               'start': 'start_service', 'stop': 'stop_service'}

    def __init__(self, **node_kwargs: Any) -> None:
        """Declare parameters, create the service clients and the polling timer."""
        super().__init__('demo_runner_node', **node_kwargs)
        self.config: DemoRunnerConfig = declare_config(self, DemoRunnerConfig())
        cfg = self.config
        self.clients_by_action = {
            action: self.create_client(Trigger, getattr(cfg, param))
            for action, param in self.ACTIONS.items() if getattr(cfg, param)}
        resets = tuple(a for a in ('sim_reset', 'teleop_reset') if a in self.clients_by_action)
        self.loop = EpisodeLoop(cfg.episodes, cfg.episode_timeout_s, cfg.settle_s,
                                cfg.reset_settle_s, resets)
        self.finished = Future()
        self._call: Optional[str] = None
        self._future: Any = None
        self._wall = Clock(clock_type=ClockType.STEADY_TIME)
        self._ready = False
        self.wait = ServiceWait(cfg.service_timeout_s, self._wall_s())
        self.create_subscription(Bool, cfg.success_topic, self._on_success, 10)
        self._speed: Optional[float] = None  # fastest joint in the latest joint state
        self._rest_wait_s: Optional[float] = None  # when the start began waiting for rest
        self._held: Optional[str] = None  # the loop's start, held until the arm rests
        if cfg.joint_state_topic and cfg.rest_speed_rad_s > 0:
            self.create_subscription(JointState, cfg.joint_state_topic, self._on_state,
                                     STATE_SUB_QOS)
        self._recorder_alive = not cfg.recorder_status_topic
        if cfg.recorder_status_topic:
            self.create_subscription(String, cfg.recorder_status_topic, self._on_status, 10)
        self.create_timer(0.02, self._tick, clock=self._wall)
        self.get_logger().info(f'recording {cfg.episodes} episodes, timeout '
                               f'{cfg.episode_timeout_s:g} s each')

    def _now_s(self) -> Optional[float]:
        # None until the first /clock message under use_sim_time: the clock still reads 0.
        ns = self.get_clock().now().nanoseconds
        return ns * 1e-9 if ns > 0 else None

    def _wall_s(self) -> float:
        return self._wall.now().nanoseconds * 1e-9

    def _on_status(self, _msg: String) -> None:
        self._recorder_alive = True

    def _on_state(self, msg: JointState) -> None:
        self._speed = max((abs(v) for v in msg.velocity), default=0.0)

    def _at_rest(self, now: float) -> bool:
        """Return whether the arm is still enough to start, or waited ``rest_timeout_s``."""
        cfg = self.config
        if not cfg.joint_state_topic or cfg.rest_speed_rad_s <= 0:
            return True
        if self._rest_wait_s is None:
            self._rest_wait_s = now
        if self._speed is not None and self._speed < cfg.rest_speed_rad_s:
            return True
        if now - self._rest_wait_s < cfg.rest_timeout_s:
            return False
        self.get_logger().warning(f'starting although the arm still moves ({self._speed} '
                                  f'rad/s after {cfg.rest_timeout_s} s)')
        return True

    def _on_success(self, msg: Bool) -> None:
        now = self._now_s()
        if now is not None:
            self.loop.on_success(bool(msg.data), now)

    def _tick(self) -> None:
        try:
            self._step()
        except EpisodeFailed as exc:
            raise NodeFailed(str(exc)) from exc

    def _step(self) -> None:
        now, wall = self._now_s(), self._wall_s()
        if now is None or self.finished.done():
            return
        if not self._ready:
            # Every service is found before the first reset: discovery can take a second or
            # more, and a scripted operator works on the new scene meanwhile, unrecorded.
            missing = {getattr(self.config, self.ACTIONS[a]): self.ACTIONS[a]
                       for a, c in self.clients_by_action.items() if not c.service_is_ready()}
            self._ready = self.wait.ready(wall, missing, self._recorder_alive,
                                          self.config.recorder_status_topic)
            if not self._ready:
                return
        if self._call is None:
            # A start held back until the arm rests stays the loop's pending call.
            action = self._held or self.loop.next_call(now)
            if action is None:
                return
            if action == 'start' and not self._at_rest(now):
                self._held = action
                return
            self._held, self._rest_wait_s = None, None
            self._call, self._future = action, None
            self.wait.restart(wall)
        param = self.ACTIONS[self._call]
        if self._future is None:
            client = self.clients_by_action[self._call]
            if client.service_is_ready():
                self._future = client.call_async(Trigger.Request())
                self.wait.restart(wall)
            self.wait.check(wall, getattr(self.config, param), param, False)
            return
        if not self._future.done():
            self.wait.check(wall, getattr(self.config, param), param, True)
            return
        response, self._call = self._future.result(), None
        result = self.loop.call_done(response.success, response.message, now)
        if result is not None:
            self.get_logger().info(
                f'episode {result.index + 1}/{self.config.episodes}: '
                f'{"success" if result.success else "timed out (failure)"}, '
                f'{result.duration_s:.1f} s, started {result.start_lag_s:.2f} s after the '
                f'reset ({result.recorder_message})')
        if self.loop.done:
            ok = sum(r.success for r in self.loop.results)
            self.get_logger().info(f'done: {ok}/{len(self.loop.results)} episodes succeeded')
            self.finished.set_result(self.loop.results)


def main(args: Optional[list] = None) -> int:
    """Record the configured number of episodes, then exit."""
    return run_node(DemoRunnerNode, args, configs=[('', DemoRunnerConfig())])


if __name__ == '__main__':
    raise SystemExit(main())
