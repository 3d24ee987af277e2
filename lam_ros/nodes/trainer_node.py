"""
Run the training pipeline (bags -> BC -> RL -> evaluation -> export) as a ROS node.

Parameters: the fields of :class:`~lam_ros.learn.pipeline_config.PipelineConfig` and
:class:`~lam_ros.learn.pipeline_config.TrainerNodeOptions` (``config/train.yaml``). The
pipeline runs in a worker thread; the node only reports:

- progress on ``/diagnostics`` (diagnostic_msgs/DiagnosticArray): stage, step, total_steps,
  loss, success_rate, eta_s, elapsed_s, last_checkpoint, output_dir;
- at the end, the exported best checkpoint's path on ``~/best_checkpoint``
  (std_msgs/String, transient local: late subscribers get it too);
- ``~/cancel`` (std_srvs/Trigger) stops the pipeline after the running stage saved its last
  checkpoint. SIGINT does the same before the node exits.
"""

import socket
import sys
import threading
from typing import Any, Optional

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from lam_ros.learn.pipeline import PipelineResult, Progress, run_pipeline
from lam_ros.learn.pipeline_config import (
    load_pipeline_config, PipelineConfig, read_params_file, TrainerNodeOptions)
from lam_ros.nodes.common import declare_config, NodeFailed, run_node
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.task import Future
from std_msgs.msg import String
from std_srvs.srv import Trigger

LATCHED_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL)
STOP_WAIT_S = 120.0
"""How long SIGINT waits for the running stage to save its checkpoint."""


class TrainerNode(Node):
    """Reports the progress of a pipeline run in a worker thread; cancels it on request."""

    def __init__(self, **node_kwargs: Any) -> None:
        """Declare parameters, check the paths, start the pipeline thread."""
        super().__init__('trainer_node', **node_kwargs)
        self.config: PipelineConfig = declare_config(self, PipelineConfig())
        self.options: TrainerNodeOptions = declare_config(self, TrainerNodeOptions())
        self.config.check_paths()
        self.finished: Optional[Future] = Future() if self.options.exit_when_done else None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._progress = Progress('starting', message='starting')
        self._result: Optional[PipelineResult] = None
        self._error = ''
        self._announced = False
        self._diag_pub = self.create_publisher(DiagnosticArray, self.options.diagnostics_topic,
                                               10)
        self._best_pub = self.create_publisher(String, '~/best_checkpoint', LATCHED_QOS)
        self.create_service(Trigger, '~/cancel', self._on_cancel)
        self.create_timer(1.0 / self.options.status_rate_hz, self._on_timer)
        self._thread = threading.Thread(target=self._run, name='pipeline', daemon=True)
        self._thread.start()
        self.get_logger().info(f'training from {self.config.dataset} into '
                               f'{self.config.output_dir}')

    def _run(self) -> None:
        try:
            result = run_pipeline(self.config, self._on_progress, self._stop.is_set)
        except Exception as exc:  # reported on /diagnostics and as the node's exit reason
            with self._lock:
                self._error = f'{type(exc).__name__}: {exc}' if not isinstance(
                    exc, ValueError) else str(exc)
                self._progress = Progress('failed', message=self._error,
                                          last_checkpoint=self._progress.last_checkpoint)
            return
        with self._lock:
            self._result = result

    def _on_progress(self, progress: Progress) -> None:
        with self._lock:
            self._progress = progress

    def _on_cancel(self, _request: Any, response: Any) -> Any:
        with self._lock:
            progress, ended = self._progress, not self._thread.is_alive()
        if ended:
            response.success = False
            response.message = f'nothing to cancel: the pipeline ended ({progress.stage})'
        else:
            self._stop.set()
            response.success = True
            response.message = (f'stopping at {progress.stage} step {progress.step}; the last '
                                'checkpoint is saved before the pipeline ends')
        return response

    def _on_timer(self) -> None:
        with self._lock:
            progress, result, error = self._progress, self._result, self._error
        self._diag_pub.publish(self.diagnostics(progress))
        if result is not None and not self._announced:
            self._announced = True
            if result.best_checkpoint:
                self._best_pub.publish(String(data=result.best_checkpoint))
            self.get_logger().info(progress.message)
            if self.finished is not None:
                self.finished.set_result(result.status)
        if error:
            raise NodeFailed(error)

    def diagnostics(self, progress: Progress) -> DiagnosticArray:
        """Return the progress as a DiagnosticArray with one status."""
        level = {'failed': DiagnosticStatus.ERROR, 'cancelled': DiagnosticStatus.WARN}.get(
            progress.stage, DiagnosticStatus.OK)
        values = {'stage': progress.stage, 'step': progress.step,
                  'total_steps': progress.total_steps, 'loss': progress.loss,
                  'success_rate': progress.success_rate, 'eta_s': progress.eta_s,
                  'elapsed_s': progress.elapsed_s, 'last_checkpoint': progress.last_checkpoint,
                  'output_dir': self.config.output_dir}
        status = DiagnosticStatus(
            level=level, name=f'{self.get_name()}: training pipeline', message=progress.message,
            hardware_id=socket.gethostname(),
            values=[KeyValue(key=k, value='' if v is None else
                             (f'{v:.6g}' if isinstance(v, float) else str(v)))
                    for k, v in values.items()])
        msg = DiagnosticArray(status=[status])
        msg.header.stamp = self.get_clock().now().to_msg()
        return msg

    def destroy_node(self) -> None:
        """Stop the pipeline (its last checkpoint saved), then destroy the node."""
        self._stop.set()
        self._thread.join(STOP_WAIT_S)
        with self._lock:
            progress = self._progress
        # print: the ROS logger may be gone after a SIGINT.
        if self._thread.is_alive():
            print(f'trainer_node: the pipeline did not stop within {STOP_WAIT_S:.0f} s',
                  file=sys.stderr, flush=True)
        elif progress.last_checkpoint:
            print(f'trainer_node: {progress.stage}; last checkpoint {progress.last_checkpoint}',
                  flush=True)
        super().destroy_node()


def check_params_files(args: Optional[list]) -> None:
    """Validate every --params-file before rclpy reads it; ValueError names the problem."""
    argv = list(sys.argv[1:] if args is None else args)
    values = {}
    for flag, path in zip(argv, argv[1:]):
        if flag == '--params-file':
            values.update(read_params_file(path))
    if values:
        load_pipeline_config(None, values)


def main(args: Optional[list] = None) -> int:
    """Run the pipeline with progress over ROS; exit 1 with one line on bad parameters."""
    try:
        check_params_files(args)
    except ValueError as exc:
        print(f'trainer_node: {exc}', file=sys.stderr, flush=True)
        return 1
    return run_node(TrainerNode, args,
                    configs=[('', PipelineConfig()), ('', TrainerNodeOptions())])


if __name__ == '__main__':
    raise SystemExit(main())
