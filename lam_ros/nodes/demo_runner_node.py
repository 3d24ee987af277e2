"""Record demonstrations hands-free: reset, start, wait for success or a timeout, stop; N times.

For each episode the runner calls ``/sim_node/reset``, ``/teleop_node/reset`` (so a
scripted operator re-anchors on the new scene), ``/recorder_node/start_episode``, then
waits until ``/task_success`` turns true (the sim applies the task's hold times) plus
``settle_s``, or until ``episode_timeout_s``, and calls ``/recorder_node/stop_episode``
either way: the recorder stores the last ``/task_success`` value as the outcome, so an
episode that timed out is saved as a failure. After the last episode the node exits, which
ends ``ros2 launch lam_ros sim_record.launch.py episodes:=N``. Episode times follow the
node clock: simulated time with ``use_sim_time``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Optional

from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rclpy.task import Future
from std_msgs.msg import Bool, String
from std_srvs.srv import Trigger

from lam_ros.nodes.common import declare_config, NodeFailed, run_node


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

    def __post_init__(self) -> None:
        """Reject counts and times the runner cannot work with."""
        if self.episodes < 1:
            raise ValueError(f'episodes must be >= 1, got {self.episodes} (0 in the launch file '
                             'means: do not start the runner)')
        for name in ('episode_timeout_s', 'service_timeout_s'):
            if not getattr(self, name) > 0:
                raise ValueError(f'{name} must be positive, got {getattr(self, name)}')
        for name in ('settle_s', 'reset_settle_s'):
            if getattr(self, name) < 0:
                raise ValueError(f'{name} must be >= 0, got {getattr(self, name)}')
        for name in ('start_service', 'stop_service', 'success_topic'):
            if not getattr(self, name):
                raise ValueError(f'{name} must name a service or topic, got an empty string')


@dataclass
class EpisodeResult:
    """What happened in one recorded episode."""

    index: int
    """0-based episode number of this run."""
    success: bool
    """The task succeeded before the timeout."""
    duration_s: float
    """Node-clock seconds from start_episode to stop_episode."""
    recorder_message: str = ''
    """The recorder's answer to stop_episode (episode name, outcome, message count)."""
    start_lag_s: float = 0.0
    """Node-clock seconds from the last reset's answer to start_episode's answer: how much
    of the new scene an operator could act on before the recording began."""


class EpisodeLoop:
    """The ROS-free episode state machine: which service is due next, and when.

    Drive it with ``next_call(now_s)`` (returns 'sim_reset', 'teleop_reset', 'start',
    'stop' or None) and report each answer with ``call_done``, and each ``/task_success``
    value with ``on_success``. Times are in seconds of one clock.
    """

    def __init__(self, episodes: int, episode_timeout_s: float, settle_s: float = 0.5,
                 reset_settle_s: float = 0.2,
                 resets: tuple = ('sim_reset', 'teleop_reset')) -> None:
        """Plan ``episodes`` episodes; ``resets`` are the calls made before each start."""
        if episodes < 1:
            raise ValueError(f'episodes must be >= 1, got {episodes}')
        self.episodes, self.timeout_s = episodes, episode_timeout_s
        self.settle_s, self.reset_settle_s, self.resets = settle_s, reset_settle_s, resets
        self.results: List[EpisodeResult] = []
        self._plan = list(resets)
        self._phase = 'calls'  # resets -> 'settle_resets' (then start) -> 'recording' (then stop)
        self._pending: Optional[str] = None
        self._since_s = 0.0
        self._success_s: Optional[float] = None
        self._seen_false = False
        self._reset_s: Optional[float] = None
        self._start_lag_s = 0.0

    @property
    def done(self) -> bool:
        """True once every episode has been stopped."""
        return len(self.results) >= self.episodes

    @property
    def index(self) -> int:
        """0-based number of the current episode."""
        return len(self.results)

    def next_call(self, now_s: float) -> Optional[str]:
        """Return the service call due at ``now_s`` (then await its answer), or None."""
        if self.done or self._pending is not None:
            return None
        if self._phase == 'calls' and self._plan:
            self._pending = self._plan.pop(0)
        elif self._phase == 'calls':
            self._phase, self._since_s = 'settle_resets', now_s
        if self._phase == 'settle_resets' and now_s - self._since_s >= self.reset_settle_s:
            self._pending = 'start'
        elif self._phase == 'recording':
            succeeded = self._success_s is not None and \
                now_s - self._success_s >= self.settle_s
            if succeeded or now_s - self._since_s >= self.timeout_s:
                self._pending = 'stop'
        return self._pending

    def call_done(self, ok: bool, message: str, now_s: float) -> Optional[EpisodeResult]:
        """Take the answer to the pending call; return the result when it ended an episode."""
        action, self._pending = self._pending, None
        if action is None:
            raise RuntimeError('call_done without a pending call')
        if not ok:
            raise NodeFailed(f'{action} failed in episode {self.index + 1}: {message}')
        if action == 'start':
            self._start_lag_s = now_s - self._reset_s if self.resets else 0.0
            self._phase, self._since_s = 'recording', now_s
            self._success_s, self._seen_false = None, False
            return None
        if action == 'stop':
            result = EpisodeResult(self.index, self._success_s is not None,
                                   now_s - self._since_s, message, self._start_lag_s)
            self.results.append(result)
            self._phase, self._plan = 'calls', list(self.resets)
            return result
        if not self._plan:  # the last reset answered: the settle time counts from here
            self._phase, self._since_s = 'settle_resets', now_s
        if action == self.resets[0]:
            self._reset_s = now_s
        return None

    def on_success(self, value: bool, now_s: float) -> None:
        """Take one /task_success value received at ``now_s``."""
        if self._phase != 'recording' or self._pending == 'stop':
            return
        # A true must follow a false seen in this episode: a stale true from before the
        # reset can still be in flight when the episode starts.
        if not value:
            self._seen_false = True
        elif self._seen_false and self._success_s is None:
            self._success_s = now_s


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
        self._call: Optional[tuple] = None  # (action, future or None, wall s since)
        self._wall = Clock(clock_type=ClockType.STEADY_TIME)
        self._ready = False
        self._started_wall_s = self._wall_s()
        self.create_subscription(Bool, cfg.success_topic, self._on_success, 10)
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

    def _on_success(self, msg: Bool) -> None:
        now = self._now_s()
        if now is not None:
            self.loop.on_success(bool(msg.data), now)

    def _services_ready(self) -> bool:
        # Every service is found before the first reset: discovery can take a second or
        # more, and a scripted operator works on the new scene meanwhile, unrecorded.
        missing = [getattr(self.config, self.ACTIONS[a])
                   for a, c in self.clients_by_action.items() if not c.service_is_ready()]
        waited_s = self._wall_s() - self._started_wall_s
        if not missing and not self._recorder_alive:
            if waited_s > self.config.service_timeout_s:
                raise NodeFailed(
                    f'no message on {self.config.recorder_status_topic} after {waited_s:.0f} s:'
                    ' the recorder is not running or (use_sim_time) receives no /clock')
            return False
        if missing and waited_s > self.config.service_timeout_s:
            params = [p for a, p in self.ACTIONS.items()
                      if getattr(self.config, p) in missing]
            raise NodeFailed(
                f'services {missing} are not available after {waited_s:.0f} s; start the '
                f'nodes that offer them, or set the parameters {params}')
        return not missing

    def _tick(self) -> None:
        now = self._now_s()
        if now is None or self.finished.done():
            return
        if not self._ready:
            self._ready = self._services_ready()
            if not self._ready:
                return
        if self._call is None:
            action = self.loop.next_call(now)
            if action is None:
                return
            self._call = (action, None, self._wall_s())
        action, future, since = self._call
        name = getattr(self.config, self.ACTIONS[action])
        waited_s = self._wall_s() - since
        if future is None:
            client = self.clients_by_action[action]
            if client.service_is_ready():
                self._call = (action, client.call_async(Trigger.Request()), self._wall_s())
            elif waited_s > self.config.service_timeout_s:
                raise NodeFailed(
                    f'service {name} is not available after {waited_s:.0f} s; start the node '
                    f'that offers it, or set the {self.ACTIONS[action]} parameter')
            return
        if not future.done():
            if waited_s > self.config.service_timeout_s:
                raise NodeFailed(f'service {name} did not answer within {waited_s:.0f} s')
            return
        self._call = None
        response = future.result()
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
    return run_node(DemoRunnerNode, args)


if __name__ == '__main__':
    raise SystemExit(main())
