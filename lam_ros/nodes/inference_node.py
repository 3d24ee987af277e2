"""
Run a trained policy on an arm: joint states and observations in, gated joint commands out.

Loads ``checkpoint`` (joints, rates and observation spec come from it), subscribes to
``/joint_states`` and the observation topics the policy needs (each camera the checkpoint
observes on its ``sensor_msgs/Image`` topic: ``<camera>_rgb`` from ``<ns>/image_raw``,
``<camera>_depth`` from ``<ns>/depth/image_raw``, converted and resized as its training
frames were; a frame that cannot be read is refused with one error and the policy waits while
the gate holds), and publishes at
``control_rate_hz`` to a forward position controller (``Float64MultiArray``) or a
joint_trajectory_controller (``JointTrajectory``), reliably. The policy runs in its own thread
(or process, ``policy_process``) at its checkpoint rate; the commands are the temporal ensemble
of its action chunks, interpolated between policy steps and passed through the command gate.

``~/enable`` (std_srvs/SetBool): nothing is published until it is called with true, unless
``autostart``; false holds the position. ``~/reset`` (std_srvs/Trigger): a new episode (after
the scene was reset): empty history, gate re-anchored on the measured state. ``~/stats``
(diagnostic_msgs/DiagnosticArray): loop rate, late ticks, jitter, policy latency, state age.
"""

from __future__ import annotations

from functools import partial
import json
import time
from typing import Any, Optional

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseStamped
from lam_ros.control.inference import (
    InferenceConfig, InferenceController, observation_items)
from lam_ros.control.inference_threads import (
    PeriodicThread, PolicyWorker, set_realtime_priority)
from lam_ros.control.limits import load_urdf_limits, parse_urdf_limits
from lam_ros.data.messages import image_to_array
from lam_ros.description import image_kind, load_robot
from lam_ros.nodes.common import (
    CommandOutput, declare_config, declare_param, NodeFailed, pose_from_msg, run_node,
    STATE_SUB_QOS)
from lam_ros.policy.backend import load_backend, ProcessBackend
from lam_ros.policy.checkpoint import CheckpointError
import numpy as np
from rclpy.node import Node
from sensor_msgs.msg import Image, JointState
from std_srvs.srv import SetBool, Trigger


def _backend(cfg: InferenceConfig) -> Any:
    factory = partial(load_backend, cfg.checkpoint, cfg.backend, cfg.device, cfg.half,
                      cfg.compile_model, cfg.policy_threads)
    try:
        return ProcessBackend(factory) if cfg.policy_process else factory()
    except CheckpointError as err:
        raise ValueError(f'cannot load checkpoint: {err}') from err


class InferenceNode(Node):
    """Messages <-> arrays around an :class:`InferenceController` and its two threads."""

    def __init__(self, **kwargs: Any) -> None:
        """Load the policy and the limits, then create the ROS interface and the loops."""
        super().__init__('inference_node', **kwargs)
        cfg = declare_config(self, InferenceConfig())
        description = declare_param(self, 'robot_description', '',
                                    'URDF XML of the robot (used when urdf_path is empty)')
        if not cfg.checkpoint:
            raise ValueError('set the checkpoint parameter to a policy checkpoint directory')
        self.backend = _backend(cfg)
        try:
            robot = load_robot(cfg.robot or self.backend.config.robot)
            cfg = self.config = cfg.resolved(robot)
            if cfg.urdf_path:
                limits = load_urdf_limits(cfg.urdf_path)
            elif description:
                limits = parse_urdf_limits(description)
            else:
                limits = robot.joint_limits(self.backend.config.joint_names)
        except OSError as err:
            raise ValueError(str(err)) from err
        self.ctl = InferenceController(self.backend, limits, cfg)
        self._warm_up()
        self._failure = ''
        self._last_error = ''
        self.output = CommandOutput(self, cfg.command_interface, cfg.command_topic,
                                    self.ctl.joint_names, 1.0 / cfg.control_rate_hz)
        self.create_subscription(JointState, cfg.joint_state_topic, self._on_joint_state,
                                 STATE_SUB_QOS)
        for key, topic in observation_items(cfg, self.ctl.obs_spec).items():
            kind = Image if image_kind(key) else PoseStamped
            self.create_subscription(kind, topic, partial(self._on_observation, key, topic),
                                     STATE_SUB_QOS)
        self.stats_pub = self.create_publisher(DiagnosticArray, '~/stats', 10)
        self.create_service(SetBool, '~/enable', self._on_enable)
        self.create_service(Trigger, '~/reset', self._on_reset)
        self.create_timer(1.0 / cfg.stats_rate_hz, self._publish_stats)
        self.create_timer(0.1, self._check_threads)
        # With the policy in its own process this thread only relays, so it may run real-time.
        self.worker = PolicyWorker(self.ctl, on_error=self._thread_failed, priority=max(
            cfg.control_priority - 2, 0) if cfg.policy_process else 0)
        self.loop = PeriodicThread(1.0 / cfg.control_rate_hz, self._on_tick, 'lam_ros-control',
                                   on_error=self._thread_failed, priority=cfg.control_priority,
                                   stats=self.ctl.ticks)
        self.worker.start()
        self.loop.start()
        if self.loop.priority_error:
            self.get_logger().warning(self.loop.priority_error)
        elif cfg.control_priority > 1:
            # This thread runs the callbacks and hands the GIL to the control loop: preempted
            # while holding it, the loop would wait. Set last, so no thread or process started
            # above inherits it.
            set_realtime_priority(cfg.control_priority - 1)
        if cfg.autostart:
            self._enable()
        self.get_logger().info(
            f'{getattr(self.backend, "name", cfg.backend)}: {len(self.ctl.joint_names)} joints, '
            f'observes {sorted(self.ctl.obs_spec)}, policy at {self.ctl.policy_rate_hz:g} Hz, '
            f'commands at {cfg.control_rate_hz:g} Hz on {self.output.topic}; '
            + ('enabled' if cfg.autostart else 'disabled until ~/enable is called'))

    def _warm_up(self) -> None:
        # The first forward pass allocates and (on a GPU) compiles: keep it off the clock.
        spec = self.ctl.obs_spec
        obs = {k: np.zeros((1, self.backend.config.history_len) + tuple(s),
                           dtype=np.uint8 if image_kind(k) == 'rgb' else np.float32)
               for k, s in spec.items()}
        mask = np.ones((1, self.backend.config.history_len), dtype=bool)
        for _ in range(3):
            self.backend.predict_chunk(obs, mask)

    # ---- messages in ----

    def _on_joint_state(self, msg: JointState) -> None:
        error = self.ctl.on_joint_state(time.monotonic(), msg.name, msg.position, msg.velocity)
        if error:
            self._log_error(error)

    def _on_observation(self, key: str, topic: str, msg: Any) -> None:
        try:
            if image_kind(key):
                error = self.ctl.on_image(time.monotonic(), key, image_to_array(msg),
                                          msg.encoding)
            else:
                error = self.ctl.on_observation(time.monotonic(), key, pose_from_msg(msg))
        except ValueError as err:
            error = self.ctl.refuse(key, f'{key}: {err}')
        if error:
            self._log_error(f'{topic}: {error}; the policy waits, commands hold')

    def _log_error(self, text: str) -> None:
        # A new kind of fault is logged at once; a repeated one once per 5 s.
        if text != self._last_error:
            self._last_error = text
            self.get_logger().error(text)
        else:
            self.get_logger().error(text, throttle_duration_sec=5.0)

    # ---- commands out ----

    def _on_tick(self, now_s: float) -> None:
        command = self.ctl.tick(now_s)
        if command is not None:
            self._publish(command)

    def _publish(self, command: np.ndarray) -> None:
        self.output.publish(command)

    def _enable(self) -> str:
        self.ctl.enable(time.monotonic())
        self.worker.new_episode()
        state = self.ctl.gate.reason if self.ctl.gate.state_age_s(time.monotonic()) > \
            self.config.state_timeout_s else 'joint state fresh'
        return f'enabled ({state})'

    def _on_enable(self, request: SetBool.Request, response: SetBool.Response) -> Any:
        if request.data:
            response.message = self._enable()
        else:
            hold = self.ctl.disable()
            if hold is not None:
                self._publish(hold)
            response.message = 'disabled: holding position, nothing more is published'
        response.success = True
        self.get_logger().info(response.message)
        return response

    def _on_reset(self, _request: Trigger.Request, response: Trigger.Response) -> Any:
        # Enabled: as a fresh enable; disabled: nothing to restart, and nothing is published.
        if self.ctl.enabled:
            response.message = f'new episode, {self._enable()}'
        else:
            response.message = 'disabled: nothing to reset (call ~/enable first)'
        response.success = True
        self.get_logger().info(response.message)
        return response

    # ---- health ----

    def _thread_failed(self, err: BaseException) -> None:
        self.ctl.disable()
        self._failure = f'{type(err).__name__}: {err}'

    def _check_threads(self) -> None:
        if self._failure:
            raise NodeFailed(f'a control thread failed, commands stopped: {self._failure}')

    def _publish_stats(self) -> None:
        stats = self.ctl.stats(time.monotonic())
        stats['policy_overruns'] = self.worker.overruns
        stats['ticks_skipped'] = self.loop.skipped
        status = DiagnosticStatus(name=f'{self.get_name()}: control loop',
                                  hardware_id=self.config.checkpoint)
        late = stats['enabled'] and stats['on_time_fraction'] < 0.99
        holding = stats['enabled'] and bool(stats['gate_reason'])
        status.level = DiagnosticStatus.WARN if late or holding else DiagnosticStatus.OK
        status.message = ('disabled' if not stats['enabled'] else
                          f'holding: {stats["gate_reason"]}' if holding else
                          f'{stats["loop_rate_hz"]:.0f} Hz, {100 * stats["on_time_fraction"]:.1f}'
                          ' % of ticks on time')
        status.values = [KeyValue(key=k, value=v if isinstance(v, str) else json.dumps(v))
                         for k, v in stats.items()]
        msg = DiagnosticArray(status=[status])
        msg.header.stamp = self.get_clock().now().to_msg()
        self.stats_pub.publish(msg)

    def destroy_node(self) -> None:
        """Stop both loops and the policy process before the node goes."""
        self.ctl.disable()
        self.loop.stop()
        self.worker.stop()
        close = getattr(self.backend, 'close', None)
        if close is not None:
            close()
        super().destroy_node()


def main(args: Optional[list] = None) -> int:
    """Run the inference node until shutdown."""
    return run_node(InferenceNode, args, configs=[('', InferenceConfig())])


if __name__ == '__main__':
    raise SystemExit(main())
