"""
Record demonstration episodes from ROS topics into one rosbag2 MCAP bag per episode.

Services (std_srvs/Trigger): ``~/start_episode``, ``~/stop_episode`` (saves; the outcome is
the last value on ``success_topic``), ``~/discard_episode``. Optional joystick buttons do
the same. ``~/status`` (std_msgs/String) carries a JSON summary.

Messages are taken raw (CDR bytes). With ``log_time`` ``header`` (the default) each is logged
at its header stamp, headerless ones (commands, success) at their DDS arrival placed on the
joint states' clock, and an episode holds what arrived between the start and stop calls,
however far the callbacks lag behind a fast simulation (``lam_ros.data.recording.timing``);
``~/stop_episode`` answers once those messages are written. With ``receipt`` messages are
stamped with the node clock when the callback runs, as ``ros2 bag record`` does. On SIGINT an
open episode is closed and saved with status ``interrupted``: nothing recorded is lost, and
the operator decides later whether to use it.
"""

from functools import partial
import importlib
import json
import time
from typing import Any, Optional

from lam_ros.data.messages import IMAGE
from lam_ros.data.recording.config import RecorderConfig
from lam_ros.data.recording.recorder import DatasetRecorder, RecordingError
from lam_ros.data.recording.timing import Arrivals, bool_value, EpisodeTiming
from lam_ros.nodes.common import declare_config, run_node
import rclpy
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.clock import Clock, ClockType
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.task import Future
from rosbags.serde import SerdeError
from std_msgs.msg import Bool, String
from std_srvs.srv import Trigger


def message_class(msgtype: str) -> Any:
    """Return the rclpy message class of ``pkg/msg/Name``."""
    package, _, name = msgtype.split('/')
    return getattr(importlib.import_module(f'{package}.msg'), name)


def _qos(reliable: bool, depth: int) -> QoSProfile:
    return QoSProfile(depth=depth, history=HistoryPolicy.KEEP_LAST,
                      durability=DurabilityPolicy.VOLATILE,
                      reliability=ReliabilityPolicy.RELIABLE if reliable
                      else ReliabilityPolicy.BEST_EFFORT)


class RecorderNode(Node):
    """Subscribes to the configured topics and hands every message to a DatasetRecorder."""

    def __init__(self, **node_kwargs: Any) -> None:
        """Declare parameters, open the dataset directory and create the ROS interface."""
        super().__init__('recorder_node', **node_kwargs)
        self.config: RecorderConfig = declare_config(self, RecorderConfig()).resolved()
        cfg = self.config
        self.recorder = DatasetRecorder(
            cfg.output_dir, cfg.robot, cfg.joint_names, cfg.topic_map(), cfg.rates(),
            cfg.task, action_topic=cfg.command_topic or None,
            flush_interval_s=cfg.flush_interval_s,
            required_topics=cfg.required_topics if cfg.required_max_age_s > 0 else (),
            required_max_age_s=cfg.required_max_age_s)
        if self.recorder.last_recovery.changed:
            self.get_logger().warning(f'recovered {cfg.output_dir}: '
                                      f'{self.recorder.last_recovery}')
        self._success: Optional[bool] = None
        self._last_error = ''
        self._joy_buttons: list = []
        self.timing: Optional[EpisodeTiming] = None
        self._arrivals = Arrivals()
        if cfg.log_time == 'header':
            self.timing = EpisodeTiming(cfg.topic_map(), cfg.time_reference_topic,
                                        [cfg.command_topic] if cfg.command_topic else [])
        self._stopping: Optional[Future] = None
        self._stop_deadline = 0.0
        for topic, msgtype in cfg.topic_map().items():
            depth = cfg.image_queue_depth if msgtype == IMAGE else cfg.queue_depth
            qos = _qos(topic not in cfg.best_effort_topics, depth)
            self.create_subscription(message_class(msgtype), topic,
                                     partial(self._on_message, topic), qos, raw=True)
        if cfg.success_topic and cfg.success_topic not in cfg.topic_map():
            self.create_subscription(Bool, cfg.success_topic, self._on_success, 10)
        if cfg.joy_topic:
            self.create_subscription(message_class('sensor_msgs/msg/Joy'), cfg.joy_topic,
                                     self._on_joy, 10)
        self._scene: Optional[dict] = None  # a sim scene that came since the last stop
        if cfg.scene_topic:
            self.create_subscription(String, cfg.scene_topic, self._on_scene, QoSProfile(
                depth=1, reliability=ReliabilityPolicy.RELIABLE,
                durability=DurabilityPolicy.TRANSIENT_LOCAL, history=HistoryPolicy.KEEP_LAST))
        # Their own group: a stop that waits for queued messages holds the services (a start
        # waits for it), not the subscriptions and timers that serve the queues.
        services = MutuallyExclusiveCallbackGroup()
        self.create_service(Trigger, '~/start_episode', self._srv(self._start),
                            callback_group=services)
        self.create_service(Trigger, '~/stop_episode', self._srv(self._stop),
                            callback_group=services)
        self.create_service(Trigger, '~/discard_episode', self._srv(self._discard),
                            callback_group=services)
        self._status_pub = self.create_publisher(String, '~/status', 10)
        self.create_timer(1.0 / cfg.status_rate_hz, self._on_timer)
        # Wall time: a stop must finish even when the sim clock stops.
        self.create_timer(0.02, self._on_stop_poll, clock=Clock(clock_type=ClockType.STEADY_TIME))
        self.get_logger().info(f'recording {sorted(cfg.topic_map())} into {cfg.output_dir}')

    def _on_message(self, topic: str, raw: bytes, info: dict) -> None:
        self.recorder.heard(topic)
        if self.timing is not None:
            # When the message arrived, not when this callback runs (and not when this
            # process's DDS threads happened to wake): see timing.Arrivals.
            publisher = (topic, bytes(info.get('publisher_gid', {}).get('data', b'')))
            received_ns = self._arrivals.arrival(
                publisher, info.get('source_timestamp', 0),
                info.get('received_timestamp') or time.time_ns())
            for item in self.timing.push(topic, raw, received_ns):
                self._write(item.topic, item.log_time_ns, item.raw)
            return
        if not self.recorder.recording:
            return
        now_ns = self.get_clock().now().nanoseconds
        if now_ns == 0:  # use_sim_time before the first /clock: no time to stamp it with
            self.get_logger().warning(f'{topic}: dropped a message, the node clock reads 0 '
                                      '(waiting for /clock)', throttle_duration_sec=5.0)
            return
        self._write(topic, now_ns, raw)

    def _write(self, topic: str, log_time_ns: int, raw: bytes) -> None:
        if not self.recorder.recording:
            return
        if topic == self.config.success_topic:  # the outcome: the last value in the episode
            self._success = bool_value(raw)
        try:
            problem = self.recorder.write(topic, log_time_ns, raw)
        except RecordingError as exc:
            self._last_error = str(exc)
            self.get_logger().error(self._last_error)
            self.publish_status()
        except (ValueError, SerdeError) as exc:  # skip an undecodable message, keep recording
            self.get_logger().warning(f'{topic}: dropped a malformed message: {exc}',
                                      throttle_duration_sec=5.0)
            return
        if problem is not None:
            self.get_logger().warning(f'{topic}: recorded an invalid command ({problem}); the '
                                      'episode will be flagged in dataset.yaml',
                                      throttle_duration_sec=2.0)

    def _on_timer(self) -> None:
        # Data of a topic that went quiet must still reach the file within a few periods.
        try:
            self.recorder.flush()
        except RecordingError as exc:
            self._last_error = str(exc)
            self.get_logger().error(self._last_error)
        self.publish_status()

    def _on_success(self, msg: Bool) -> None:
        if self.recorder.recording and not (self.timing and self.timing.stopping):
            self._success = bool(msg.data)

    def _on_scene(self, msg: String) -> None:
        try:
            scene = json.loads(msg.data)
        except ValueError:
            return
        if isinstance(scene, dict):
            self._scene = {k: scene[k] for k in ('seed', 'object_pose', 'goal_pose')
                           if k in scene}

    def _on_joy(self, msg: Any) -> None:
        cfg, previous = self.config, self._joy_buttons
        self._joy_buttons = list(msg.buttons)
        for index, action in ((cfg.joy_start_button, partial(self._start, False)),
                              (cfg.joy_stop_button, self._stop),
                              (cfg.joy_discard_button, self._discard)):
            pressed = 0 <= index < len(msg.buttons) and msg.buttons[index]
            was = index < len(previous) and previous[index]
            if pressed and not was:
                result = action()
                if isinstance(result, Future):
                    result.add_done_callback(lambda f: self._log_result(*f.result()))
                else:
                    self._log_result(*result)

    def _log_result(self, ok: bool, text: str) -> None:
        (self.get_logger().info if ok else self.get_logger().warning)(text)

    def _srv(self, action: Any) -> Any:
        # A coroutine: while a stop waits for queued messages the executor keeps serving them.
        async def handle(_request: Any, response: Any) -> Any:
            result = action()
            if isinstance(result, Future):
                result = await result
            response.success, response.message = result
            return response
        return handle

    def _wait_for_required(self) -> None:
        """
        Listen to the silent required topics for up to ``start_wait_s``.

        A helper node spun here, in the service callback, hears them while the recorder's
        own executor is busy answering; it exists only for the wait.
        """
        silent = [t for t in self.recorder.required_topics
                  if any(s.startswith(f'{t} (') for s in self.recorder.silent_required())]
        if not silent or self.config.start_wait_s <= 0:
            return
        waiter = rclpy.create_node('_recorder_start_wait', context=self.context,
                                   start_parameter_services=False)
        executor = SingleThreadedExecutor(context=self.context)
        executor.add_node(waiter)
        types = self.config.topic_map()
        for topic in silent:
            waiter.create_subscription(message_class(types[topic]), topic,
                                       partial(self._heard, topic), _qos(False, 1), raw=True)
        end = time.monotonic() + self.config.start_wait_s
        try:
            # Stop waiting as soon as the node shuts down (SIGINT): spinning a context that is
            # going away leaves half-made rclpy tasks behind.
            while self.recorder.silent_required() and time.monotonic() < end and \
                    self.context.ok():
                executor.spin_once(timeout_sec=0.05)
        finally:
            executor.shutdown()
            waiter.destroy_node()

    def _heard(self, topic: str, _raw: bytes) -> None:
        self.recorder.heard(topic)

    def _start(self, wait: bool = True) -> tuple:
        if wait and not self.recorder.recording:
            self._wait_for_required()
        try:
            name = self.recorder.start_episode()
        except (RuntimeError, OSError) as exc:
            return False, str(exc)
        if self.timing is not None:
            self.timing.begin(time.time_ns())
        self._success, self._last_error = None, ''
        self.publish_status()
        return True, f'recording {name}'

    def _stop(self) -> Any:
        """Return (ok, text), or a Future of it while the queued messages are written."""
        if not self.recorder.recording:
            return False, 'no episode is being recorded; call ~/start_episode first'
        if self.timing is None or not self.timing.recording:
            return self._save()
        if self._stopping is None:
            self.timing.end(time.time_ns())
            self._stopping = Future()
            self._stop_deadline = time.monotonic() + self.config.stop_wait_s
        return self._stopping

    def _on_stop_poll(self) -> None:
        if self._stopping is None:
            return
        done = self.timing.poll()
        if not done and time.monotonic() < self._stop_deadline:
            return
        if not done:
            self.get_logger().warning(
                f'stop: after {self.config.stop_wait_s} s these topics still had not been '
                f'processed up to the stop: {self.timing.lagging()}; saving what arrived')
        for item in self.timing.finish():
            self._write(item.topic, item.log_time_ns, item.raw)
        future, self._stopping = self._stopping, None
        future.set_result(self._save())

    def _save(self) -> tuple:
        try:
            if self._scene is not None:
                self.recorder.set_scene(self._scene)
                self._scene = None
            entry = self.recorder.stop_episode(self._success)
        except (RuntimeError, OSError) as exc:
            return False, str(exc)
        self.publish_status()
        text = (f'saved {entry["name"]}: success={entry["success"]}, '
                f'{entry["duration_s"]:.1f} s, {sum(entry["message_counts"].values())} messages')
        if entry.get('warnings'):
            text += '; WARNING: ' + '; '.join(entry['warnings'])
            self.get_logger().warning(text)
        return True, text

    def _discard(self) -> tuple:
        if not self.recorder.recording:
            return False, 'no episode is being recorded; nothing to discard'
        if self._stopping is not None:
            return False, 'the episode is being stopped and saved; it cannot be discarded now'
        if self.timing is not None:
            self.timing.discard()
        entry = self.recorder.discard_episode()
        self.publish_status()
        return True, f'discarded {entry["name"]}'

    def publish_status(self) -> None:
        """Publish the recorder state as JSON on ~/status."""
        episodes = self.recorder.episodes
        status = {
            'state': 'recording' if self.recorder.recording else 'idle',
            'episode': self.recorder.episode_name,
            'message_counts': self.recorder.message_counts if self.recorder.recording else {},
            'success': self._success,
            'episodes_complete': sum(e['status'] == 'complete' for e in episodes),
            'episodes_total': len(episodes),
            'output_dir': str(self.recorder.output_dir),
            'error': self._last_error,
            'silent_required_topics': self.recorder.silent_required(),
        }
        self._status_pub.publish(String(data=json.dumps(status)))

    def close(self) -> Optional[dict]:
        """Save an open episode as interrupted and release the dataset directory."""
        if self.timing is not None and self.timing.recording:
            try:
                for item in self.timing.finish():
                    self._write(item.topic, item.log_time_ns, item.raw)
            except Exception:  # what was written is saved below; nothing more to do
                pass
        return self.recorder.close()

    def destroy_node(self) -> None:
        """Save an open episode as interrupted (see close), then destroy the node."""
        entry = self.close()
        if entry is not None:
            # print: the ROS logger may already be gone after a SIGINT.
            print(f'saved open episode {entry["name"]} as interrupted', flush=True)
        super().destroy_node()


def main(args: Optional[list] = None) -> int:
    """Run the recorder until SIGINT, then save any open episode as interrupted."""
    return run_node(RecorderNode, args, configs=[('', RecorderConfig())])


if __name__ == '__main__':
    raise SystemExit(main())
