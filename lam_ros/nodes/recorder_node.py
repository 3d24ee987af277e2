"""
Record demonstration episodes from ROS topics into one rosbag2 MCAP bag per episode.

Services (std_srvs/Trigger): ``~/start_episode``, ``~/stop_episode`` (saves; the outcome is
the last value on ``success_topic``), ``~/discard_episode``. Optional joystick buttons do
the same. ``~/status`` (std_msgs/String) carries a JSON summary.

Messages are taken raw (CDR bytes) and stamped with the node clock on arrival, as
``ros2 bag record`` does. On SIGINT an open episode is closed and saved with status
``interrupted``: nothing recorded is lost, and the operator decides later whether to use it.
"""

from functools import partial
import importlib
import json
import time
from typing import Any, Optional

from lam_ros.data.messages import IMAGE
from lam_ros.data.recording.config import RecorderConfig
from lam_ros.data.recording.recorder import DatasetRecorder, RecordingError
from lam_ros.nodes.common import declare_config, run_node
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
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
        for topic, msgtype in cfg.topic_map().items():
            depth = cfg.image_queue_depth if msgtype == IMAGE else cfg.queue_depth
            qos = _qos(topic not in cfg.best_effort_topics, depth)
            self.create_subscription(message_class(msgtype), topic,
                                     partial(self._on_message, topic), qos, raw=True)
        if cfg.success_topic:
            self.create_subscription(Bool, cfg.success_topic, self._on_success, 10)
        if cfg.joy_topic:
            self.create_subscription(message_class('sensor_msgs/msg/Joy'), cfg.joy_topic,
                                     self._on_joy, 10)
        self._scene: Optional[dict] = None  # a sim scene that came since the last stop
        if cfg.scene_topic:
            self.create_subscription(String, cfg.scene_topic, self._on_scene, QoSProfile(
                depth=1, reliability=ReliabilityPolicy.RELIABLE,
                durability=DurabilityPolicy.TRANSIENT_LOCAL, history=HistoryPolicy.KEEP_LAST))
        self.create_service(Trigger, '~/start_episode', self._srv(self._start))
        self.create_service(Trigger, '~/stop_episode', self._srv(self._stop))
        self.create_service(Trigger, '~/discard_episode', self._srv(self._discard))
        self._status_pub = self.create_publisher(String, '~/status', 10)
        self.create_timer(1.0 / cfg.status_rate_hz, self._on_timer)
        self.get_logger().info(f'recording {sorted(cfg.topic_map())} into {cfg.output_dir}')

    def _on_message(self, topic: str, raw: bytes) -> None:
        self.recorder.heard(topic)
        if not self.recorder.recording:
            return
        now_ns = self.get_clock().now().nanoseconds
        if now_ns == 0:  # use_sim_time before the first /clock: no time to stamp it with
            self.get_logger().warning(f'{topic}: dropped a message, the node clock reads 0 '
                                      '(waiting for /clock)', throttle_duration_sec=5.0)
            return
        try:
            problem = self.recorder.write(topic, now_ns, raw)
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
        if self.recorder.recording:
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
                ok, text = action()
                log = self.get_logger().info if ok else self.get_logger().warning
                log(text)

    def _srv(self, action: Any) -> Any:
        def handle(_request: Any, response: Any) -> Any:
            response.success, response.message = action()
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
        self._success, self._last_error = None, ''
        self.publish_status()
        return True, f'recording {name}'

    def _stop(self) -> tuple:
        if not self.recorder.recording:
            return False, 'no episode is being recorded; call ~/start_episode first'
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
