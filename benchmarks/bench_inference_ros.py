"""
The inference node through ROS: success vs in-process, 1 kHz timing, state-to-command latency.

Three parts, each run on an isolated DDS domain with the nodes as separate processes:

- ``e2e``: a trained policy drives ``sim_node`` through DDS only (inference_node and sim_node
  are two processes; this script only starts sim_node with seed ``--seed + i`` for episode
  i, calls ``~/enable`` and watches ``/task_success`` and ``/clock``) for ``--episodes``
  episodes, against the same checkpoint evaluated in-process by ``lam_ros.learn.evaluate``
  on the same seeds.
- ``timing``: inference_node at ``--rate-hz`` (1 kHz) while the policy runs against sim_node,
  with the policy in a thread and in its own process, each with and without a real-time
  priority for the control loop, against a bare rclpy timer publisher (also at that priority:
  ``bare_rt``) on the same machine in the same conditions, rounds interleaved; figures from
  ``~/stats`` and the same tick statistics for the bare timer (lam_ros.control.loop_stats).
  On time means the same for
  every mode: the command was published within half a period of the tick's deadline on the
  loop's own grid (the node's absolute grid; for the rclpy timer, the deadline rcl keeps), and
  a deadline with no tick at all is late.
- ``latency``: a JointState published by this script to the first command it causes (the
  gate's first command after an enable is the measured position), p50/p99 through DDS,
  against a bare echo node (subscribe, publish in the callback).

    CKPT=runs/bc_lift/best
    flock /tmp/lam_ros_cpu.lock python benchmarks/bench_inference_ros.py --checkpoint $CKPT
"""

import argparse
import json
import os
from pathlib import Path
import random
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Dict, List

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere: lam_ros from this tree
    sys.path.insert(0, str(ROOT))

CMD = '/forward_position_controller/commands'


def parse_args() -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--checkpoint', required=True, help='trained policy checkpoint')
    parser.add_argument('--task', default='lift', choices=('lift', 'pick_place'))
    parser.add_argument('--episodes', type=int, default=50)
    parser.add_argument('--seed', type=int, default=1_000_000, help='seed of episode 0')
    parser.add_argument('--parts', default='e2e,timing,latency')
    parser.add_argument('--control-rate-hz', type=float, default=100.0,
                        help='inference_node command rate in the e2e part (default: 100)')
    parser.add_argument('--rate-hz', type=float, default=1000.0,
                        help='loop rate of the timing part (default: 1000)')
    parser.add_argument('--seconds', type=float, default=10.0,
                        help='measured seconds per timing run (default: 10)')
    parser.add_argument('--rounds', type=int, default=2, help='timing rounds (default: 2)')
    parser.add_argument('--modes', default='thread,thread_rt,process,process_rt,bare,bare_rt',
                        help='timing runs per round: thread, process (policy in a thread or '
                             'its own process), thread_rt, process_rt (the same with the '
                             'control loop at SCHED_FIFO 50), bare (rclpy timer), bare_rt '
                             '(the same at SCHED_FIFO 50)')
    parser.add_argument('--samples', type=int, default=200, help='latency samples')
    parser.add_argument('--json', default='bench_inference_ros.json', help='result file')
    parser.add_argument('--bare-timer', type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument('--bare-priority', type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument('--echo', action='store_true', help=argparse.SUPPRESS)
    return parser.parse_args()


# ---- processes and the probe ----

def start_node(name: str, params: Dict[str, Any], log_dir: Path) -> subprocess.Popen:
    """Start ``python -m lam_ros.nodes.<name>`` with parameters; output to a log file."""
    args = [sys.executable, '-m', f'lam_ros.nodes.{name}', '--ros-args']
    for key, value in params.items():
        value = ('true' if value else 'false') if isinstance(value, bool) else value
        args += ['-p', f'{key}:={value}']
    return _popen(args, log_dir / f'{name}.log')


def _popen(args: List[str], log_path: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONUNBUFFERED='1',
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get('PYTHONPATH', '')]))
    log = open(log_path, 'a')
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def stop(proc: subprocess.Popen, timeout_s: float = 15.0) -> int:
    """Stop with one SIGINT (SIGKILL after ``timeout_s``); return the exit status."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


class Probe:
    """This script's rclpy node: subscriptions, services and spinning."""

    def __init__(self) -> None:
        """Create the node."""
        import rclpy
        rclpy.init()
        self.rclpy = rclpy
        self.node = rclpy.create_node('bench_inference_probe')

    def spin_until(self, condition: Callable[[], bool], timeout_s: float) -> bool:
        """Spin until ``condition()`` or the timeout; return the condition."""
        end = time.monotonic() + timeout_s
        while not condition() and time.monotonic() < end:
            self.rclpy.spin_once(self.node, timeout_sec=0.005)
        return condition()

    def spin_for(self, seconds: float) -> None:
        """Spin for ``seconds``."""
        self.spin_until(lambda: False, seconds)

    def call(self, srv_type: Any, name: str, request: Any, timeout_s: float = 30.0) -> Any:
        """Call a service and return the response."""
        client = self.node.create_client(srv_type, name)
        if not self.spin_until(client.service_is_ready, timeout_s):
            raise RuntimeError(f'service {name} did not appear within {timeout_s} s')
        future = client.call_async(request)
        if not self.spin_until(future.done, timeout_s):
            raise RuntimeError(f'service {name} did not answer')
        self.node.destroy_client(client)
        return future.result()

    def enable(self, value: bool) -> None:
        """Enable or disable inference_node."""
        from std_srvs.srv import SetBool
        self.call(SetBool, '/inference_node/enable', SetBool.Request(data=value))


# ---- e2e ----

def run_e2e(args: argparse.Namespace, probe: Probe, log_dir: Path) -> Dict[str, Any]:
    """Return in-process and through-ROS success on the same seeded episodes."""
    from lam_ros.learn.evaluate import evaluate_policy, wilson_interval
    from lam_ros.policy import read_checkpoint_config
    from lam_ros.description import get_task
    from rosgraph_msgs.msg import Clock
    from sensor_msgs.msg import JointState
    from std_msgs.msg import Bool
    t0 = time.perf_counter()
    local = evaluate_policy(args.checkpoint, args.task, episodes=args.episodes, seed=args.seed)
    local_s = time.perf_counter() - t0
    print(f'in-process: {local["successes"]}/{args.episodes} in {local_s:.0f} s', flush=True)
    rate = read_checkpoint_config(args.checkpoint)['control_rate_hz']
    limit_s = get_task(args.task).default_max_episode_steps / rate
    seen: Dict[str, Any] = {'success': False, 'clock': None, 'states': 0}
    probe.node.create_subscription(Bool, '/task_success',
                                   lambda m: seen.__setitem__('success', seen['success']
                                                              or m.data), 10)
    probe.node.create_subscription(Clock, '/clock', lambda m: seen.__setitem__(
        'clock', m.clock.sec + 1e-9 * m.clock.nanosec), 10)
    probe.node.create_subscription(JointState, '/joint_states', lambda m: seen.__setitem__(
        'states', seen['states'] + 1), 10)
    inference = start_node('inference_node', {
        'checkpoint': args.checkpoint, 'control_rate_hz': args.control_rate_hz}, log_dir)
    records = []
    try:
        for i in range(args.episodes):
            seen.update(success=False, clock=None, states=0)
            sim = start_node('sim_node', {'task': args.task, 'seed': args.seed + i}, log_dir)
            try:
                if not probe.spin_until(lambda: seen['states'] > 20, 60.0):
                    raise RuntimeError(f'sim_node sent no joint states; see {log_dir}')
                seen['success'] = False
                probe.enable(True)
                start = seen['clock']
                probe.spin_until(lambda: seen['success'] or seen['clock'] - start >= limit_s,
                                 3 * limit_s + 30.0)
                records.append({'seed': args.seed + i, 'success': bool(seen['success']),
                                'sim_s': seen['clock'] - start})
                probe.enable(False)
            finally:
                stop(sim)
            print(f'ros episode {i}: {"success" if records[-1]["success"] else "failure"} '
                  f'({records[-1]["sim_s"]:.1f} s)', flush=True)
    finally:
        code = stop(inference)
    successes = sum(r['success'] for r in records)
    ros_rate = successes / len(records)
    return {
        'episodes': args.episodes, 'seed': args.seed, 'control_rate_hz': args.control_rate_hz,
        'in_process_success_rate': local['success_rate'],
        'in_process_ci95': local['success_ci95'],
        'ros_success_rate': ros_rate, 'ros_ci95': list(wilson_interval(successes,
                                                                       len(records))),
        'difference_points': 100.0 * (ros_rate - local['success_rate']),
        'in_process_mean_time_to_success_s': local['mean_time_to_success_s'],
        'ros_mean_time_to_success_s': float(np.mean([r['sim_s'] for r in records
                                                     if r['success']] or [np.nan])),
        'same_outcome_episodes': sum(r['success'] == e['success'] for r, e in
                                     zip(records, local['records'])),
        'inference_exit_code': code, 'ros_records': records,
    }


# ---- timing ----

def bare_timer(rate_hz: float, seconds: float, priority: int = 0) -> None:
    """
    Child process: an rclpy timer publishing 8 floats at ``rate_hz``; print tick stats.

    priority > 0: the process's (only Python) thread runs at SCHED_FIFO ``priority``.
    """
    if priority:
        from lam_ros.control.inference_threads import set_realtime_priority
        error = set_realtime_priority(priority)
        if error:
            raise SystemExit(f'bare timer: {error}')
    import rclpy
    from rclpy.clock import Clock, ClockType
    from lam_ros.control.loop_stats import summarize_ticks
    from lam_ros.nodes.common import COMMAND_QOS, MSG
    from std_msgs.msg import Float64MultiArray
    rclpy.init()
    node = rclpy.create_node('bare_timer')
    pub = node.create_publisher(Float64MultiArray, '/bare/commands', COMMAND_QOS)
    starts: List[float] = []
    deadlines: List[float] = []
    done: List[float] = []
    values = np.zeros(8)
    period = 1.0 / rate_hz

    def tick() -> None:
        now = time.monotonic()
        starts.append(now)
        # rcl has already moved the timer to its next deadline, one period after this one's.
        deadlines.append(now + 1e-9 * timer.time_until_next_call() - period)
        pub.publish(MSG.float64_array(values))
        done.append(time.monotonic())

    timer = node.create_timer(period, tick, clock=Clock(clock_type=ClockType.STEADY_TIME))
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        rclpy.spin_once(node, timeout_sec=0.1)
    summary = summarize_ticks(starts, period, deadlines, done)
    print('BARE ' + json.dumps(summary.__dict__), flush=True)
    node.destroy_node()
    rclpy.shutdown()


def _parse_stats(msg: Any) -> Dict[str, Any]:
    """~/stats values: JSON, except the node's text fields, which are sent as they are."""
    out: Dict[str, Any] = {}
    for kv in msg.status[0].values:
        try:
            out[kv.key] = json.loads(kv.value)
        except ValueError:
            out[kv.key] = kv.value
    return out


def _node_timing(args: argparse.Namespace, probe: Probe, log_dir: Path,
                 mode: str) -> Dict[str, Any]:
    """Run inference_node at the timing rate until ``--seconds`` of ticks; return ~/stats."""
    from diagnostic_msgs.msg import DiagnosticArray
    got: List[Any] = []
    sub = probe.node.create_subscription(DiagnosticArray, '/inference_node/stats',
                                         got.append, 10)
    node = start_node('inference_node', {
        'checkpoint': args.checkpoint, 'control_rate_hz': args.rate_hz, 'autostart': True,
        'policy_process': mode.startswith('process'),
        'control_priority': 50 if mode.endswith('_rt') else 0}, log_dir)
    wanted = args.seconds * args.rate_hz
    try:
        probe.spin_until(lambda: bool(got) and _parse_stats(got[-1])['ticks'] >= wanted,
                         3 * args.seconds + 60.0)
    finally:
        stop(node)
        probe.node.destroy_subscription(sub)
    if not got:
        raise RuntimeError(f'no ~/stats from inference_node; see {log_dir}')
    return _parse_stats(got[-1])


def run_timing(args: argparse.Namespace, probe: Probe, log_dir: Path) -> Dict[str, Any]:
    """Return tick figures of the node (policy thread / process) and of a bare timer."""
    runs: List[Dict[str, Any]] = []
    modes = [m.strip() for m in args.modes.split(',') if m.strip()]
    sim = start_node('sim_node', {'task': args.task, 'seed': args.seed}, log_dir)
    try:
        for r in range(args.rounds):
            for mode in modes:
                if mode.startswith('bare'):
                    out = log_dir / f'{mode}_{r}.log'
                    proc = _popen([sys.executable, __file__, '--checkpoint', '-',
                                   '--bare-timer', str(args.seconds),
                                   '--bare-priority', '50' if mode == 'bare_rt' else '0',
                                   '--rate-hz', str(args.rate_hz)], out)
                    proc.wait(args.seconds + 60.0)
                    line = [x for x in out.read_text().splitlines() if x.startswith('BARE ')]
                    fig = json.loads(line[-1][5:])
                    run = {'mode': mode, 'round': r, 'rate_hz': fig['rate_hz'],
                           'on_time_fraction': fig['on_time_fraction'],
                           'jitter_p50_ms': 1e3 * fig['jitter_p50_s'],
                           'jitter_p99_ms': 1e3 * fig['jitter_p99_s'], 'late': fig['late'],
                           'lateness_p50_ms': 1e3 * fig['lateness_p50_s'],
                           'lateness_p99_ms': 1e3 * fig['lateness_p99_s'],
                           'missed': fig['missed'], 'ticks': fig['ticks']}
                else:
                    stats = _node_timing(args, probe, log_dir, mode)
                    run = {'mode': mode, 'round': r, 'rate_hz': stats['loop_rate_hz'],
                           'on_time_fraction': stats['on_time_fraction'],
                           'jitter_p50_ms': stats['jitter_p50_ms'],
                           'jitter_p99_ms': stats['jitter_p99_ms'],
                           'late': stats['ticks_late'], 'ticks': stats['ticks'],
                           'lateness_p50_ms': stats['lateness_p50_ms'],
                           'lateness_p99_ms': stats['lateness_p99_ms'],
                           'missed': stats['ticks_missed'],
                           'policy_calls': stats['policy_calls'],
                           'policy_latency_p50_ms': stats['policy_latency_p50_ms'],
                           'policy_latency_p99_ms': stats['policy_latency_p99_ms'],
                           'policy_overruns': stats['policy_overruns']}
                print('timing', json.dumps(run), flush=True)
                runs.append(run)
    finally:
        stop(sim)
    summary = {}
    for mode in modes:
        rows = [x for x in runs if x['mode'] == mode]
        summary[mode] = {k: float(np.mean([x[k] for x in rows])) for k in
                         ('rate_hz', 'on_time_fraction', 'jitter_p50_ms', 'jitter_p99_ms',
                          'lateness_p50_ms', 'lateness_p99_ms')}
    for mode in modes:
        if not mode.startswith('bare') and 'bare' in summary:
            summary[mode]['rate_vs_bare'] = summary[mode]['rate_hz'] / summary['bare']['rate_hz']
    from lam_ros.control.loop_stats import ON_TIME_TOLERANCE
    return {'rate_hz': args.rate_hz, 'seconds': args.seconds, 'rounds': args.rounds,
            'on_time': f'published within {ON_TIME_TOLERANCE} period of the deadline',
            'summary': summary, 'runs': runs}


# ---- latency ----

def echo_node() -> None:
    """Child process: publish each JointState's positions as a command, in the callback."""
    import rclpy
    from lam_ros.nodes.common import COMMAND_QOS, MSG, STATE_SUB_QOS
    from sensor_msgs.msg import JointState
    from std_msgs.msg import Float64MultiArray
    rclpy.init()
    node = rclpy.create_node('echo')
    pub = node.create_publisher(Float64MultiArray, CMD, COMMAND_QOS)
    node.create_subscription(JointState, '/joint_states',
                             lambda m: pub.publish(MSG.float64_array(m.position[:8])),
                             STATE_SUB_QOS)
    try:
        rclpy.spin(node)
    except KeyboardInterrupt:
        pass


def _latencies(args: argparse.Namespace, probe: Probe, toggle: bool) -> List[float]:
    from lam_ros.nodes.common import COMMAND_QOS, MSG
    from lam_ros.sim.robot import ALL_JOINT_NAMES, HOME_JOINT_POS
    from sensor_msgs.msg import JointState
    from std_msgs.msg import Float64MultiArray
    got: List[Any] = []
    pub = probe.node.create_publisher(JointState, '/joint_states', 10)
    sub = probe.node.create_subscription(
        Float64MultiArray, CMD, lambda m: got.append((time.perf_counter(), np.array(m.data))),
        COMMAND_QOS)
    rng = np.random.default_rng(0)
    out = []
    for i in range(args.samples + 5):
        if toggle:
            probe.enable(False)
            probe.spin_for(0.03)  # older than state_timeout_s: the next state is news
            probe.enable(True)
        probe.spin_for(0.01)
        got.clear()
        q = HOME_JOINT_POS.copy()
        q[:7] += rng.uniform(-0.05, 0.05, 7)
        q[7] = 0.02 + 0.01 * rng.uniform()
        msg = MSG.joint_state(probe.node.get_clock().now().nanoseconds, ALL_JOINT_NAMES,
                              list(q) + [q[7]], [0.0] * 9, [0.0] * 9)
        # Warm-up samples are re-sent until the node answers (discovery, start-up).
        tries = 150 if i < 5 else 1
        for _ in range(tries):
            sent = time.perf_counter()
            pub.publish(msg)
            if probe.spin_until(lambda: any(np.allclose(c, q, atol=1e-9) for _, c in got),
                                0.2 if i < 5 else 2.0):
                break
        else:
            raise RuntimeError('no command carried the published joint state')
        received = next(t for t, c in got if np.allclose(c, q, atol=1e-9))
        if i >= 5:  # the first few warm up discovery and allocations
            out.append(received - sent)
    probe.node.destroy_publisher(pub)
    probe.node.destroy_subscription(sub)
    return out


def _percentiles(values: List[float]) -> Dict[str, float]:
    ms = 1e3 * np.asarray(values)
    return {'p50_ms': float(np.percentile(ms, 50)), 'p99_ms': float(np.percentile(ms, 99)),
            'max_ms': float(ms.max()), 'samples': int(ms.size)}


def run_latency(args: argparse.Namespace, probe: Probe, log_dir: Path) -> Dict[str, Any]:
    """Return JointState-in -> command-out latency of the node and of a bare echo node."""
    result: Dict[str, Any] = {}
    for rate in (args.control_rate_hz, args.rate_hz):
        node = start_node('inference_node', {'checkpoint': args.checkpoint,
                                             'control_rate_hz': rate, 'state_timeout_s': 0.02},
                          log_dir)
        try:
            result[f'node_{rate:g}hz'] = _percentiles(_latencies(args, probe, toggle=True))
        finally:
            stop(node)
        print('latency', rate, result[f'node_{rate:g}hz'], flush=True)
    echo = _popen([sys.executable, __file__, '--checkpoint', '-', '--echo'],
                  log_dir / 'echo.log')
    try:
        result['bare_echo'] = _percentiles(_latencies(args, probe, toggle=False))
    finally:
        stop(echo)
    print('latency bare echo', result['bare_echo'], flush=True)
    return result


def main() -> int:
    """Run the chosen parts and write the JSON."""
    args = parse_args()
    if args.bare_timer:
        bare_timer(args.rate_hz, args.bare_timer, args.bare_priority)
        return 0
    if args.echo:
        echo_node()
        return 0
    os.environ['ROS_DOMAIN_ID'] = str(random.randint(1, 200))
    os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    log_dir = Path(tempfile.mkdtemp(prefix='bench_inference_'))
    probe = Probe()
    parts = [p.strip() for p in args.parts.split(',') if p.strip()]
    result: Dict[str, Any] = {'checkpoint': os.path.abspath(args.checkpoint),
                              'task': args.task, 'cpus': os.cpu_count(), 'logs': str(log_dir)}
    runners = {'e2e': run_e2e, 'timing': run_timing, 'latency': run_latency}
    for part in parts:
        t0 = time.perf_counter()
        result[part] = runners[part](args, probe, log_dir)
        result[part]['wall_s'] = time.perf_counter() - t0
        with open(args.json, 'w', encoding='utf-8') as stream:
            json.dump(result, stream, indent=2)
    print(json.dumps({k: v for k, v in result.items() if k != 'e2e'} | {
        'e2e': {k: v for k, v in result.get('e2e', {}).items() if k != 'ros_records'}},
        indent=2))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
