"""
Hands-free demonstrations through ROS: episodes recorded per minute, and how many misaligned.

For each real-time factor and task, starts sim_node (publishing /clock), a scripted
teleop_node, recorder_node and demo_runner_node (``--episodes`` episodes) as processes on an
isolated DDS domain, waits for the runner to finish, and reads the dataset back. Reports
wall seconds from the runner's start to its exit, episodes per wall minute, simulated
seconds recorded per wall second, the recorded command rate (Hz of sim time: below the
teleop's 20 Hz when it cannot keep up with the sim), how many episodes succeeded, and how
many are misaligned (``lam_ros.data.recording.audit``: commands out of step with the joint
states by more than one control period, first or last messages missing, dropped states).

    flock /tmp/lam_ros_cpu.lock python benchmarks/bench_ros_demos.py --tasks lift \
        --real-time-factors 0 1 2 --episodes 5 --json bench_ros_demos.json
"""

import argparse
import json
import os
from pathlib import Path
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMMAND_TOPIC = '/forward_position_controller/commands'
SETTLE_S = 0.5  # sim seconds recorded after success (demo_runner_node settle_s)
if str(ROOT) not in sys.path:  # run as a script from anywhere: lam_ros from this tree
    sys.path.insert(0, str(ROOT))


def _ros_value(value: Any) -> str:
    if isinstance(value, bool):
        return 'true' if value else 'false'
    return str(value)


def _start(name: str, params: Dict[str, Any], log_dir: Path) -> subprocess.Popen:
    """Start ``python -m lam_ros.nodes.<name>`` with parameters; output goes to a log file."""
    args = [sys.executable, '-m', f'lam_ros.nodes.{name}', '--ros-args']
    for key, value in params.items():
        args += ['-p', f'{key}:={_ros_value(value)}']
    env = dict(os.environ, PYTHONUNBUFFERED='1',
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get('PYTHONPATH', '')]))
    log = open(log_dir / f'{name}.log', 'w')
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def _stop(proc: subprocess.Popen, timeout_s: float = 15.0) -> int:
    """Stop with one SIGINT (SIGKILL after ``timeout_s``); return the exit status."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def _bag_quality(bag: Path) -> tuple:
    """
    Return (clean start, log time minus header stamp of the joint states in s) of one bag.

    A clean start: the bag begins before the task was solved, with the cube still at rest.
    With log_time receipt the second grows when the recorder cannot keep up with the sim;
    with log_time header it is 0.
    """
    from rosbags.highlevel import AnyReader

    from lam_ros.data import messages
    success, heights, lags = [], [], []
    with AnyReader([bag], default_typestore=messages.TYPESTORE) as reader:
        conns = [c for c in reader.connections
                 if c.topic in ('/task_success', '/object_pose', '/joint_states')]
        for conn, t_ns, raw in reader.messages(connections=conns):
            msg = messages.deserialize(raw, conn.msgtype)
            if conn.topic == '/task_success':
                success.append(bool(msg.data))
            elif conn.topic == '/object_pose':
                heights.append(msg.pose.position.z)
            else:
                stamp_ns = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
                lags.append((t_ns - stamp_ns) * 1e-9)
    clean = bool(success) and not success[0] and bool(heights) and \
        heights[0] < min(heights) + 0.01
    return clean, lags


def run_task(task: str, episodes: int, timeout_s: float, seed: int, work_dir: Path,
             limit_s: float, real_time_factor: float = 0.0,
             log_time: str = 'header') -> Dict[str, Any]:
    """Record ``episodes`` episodes of ``task`` through ROS and return the figures."""
    from lam_ros.data.recording.audit import audit_episode
    name = f'{task}_rtf{real_time_factor:g}_{log_time}'
    out_dir, log_dir = work_dir / name, work_dir / f'{name}_logs'
    log_dir.mkdir(parents=True)
    nodes: List[subprocess.Popen] = [
        _start('sim_node', {'task': task, 'seed': seed,
                            'real_time_factor': real_time_factor}, log_dir),
        _start('teleop_node', {'source': 'scripted', 'task': task, 'rate_hz': 20.0,
                               'expert_seed': seed, 'use_sim_time': True,
                               'expert_waits_for': '/recorder_node/status'}, log_dir),
        _start('recorder_node', {'output_dir': str(out_dir), 'task': task,
                                 'use_sim_time': True, 'log_time': log_time}, log_dir),
    ]
    t0 = time.monotonic()
    runner = _start('demo_runner_node', {'episodes': episodes, 'use_sim_time': True,
                                         'episode_timeout_s': timeout_s,
                                         'settle_s': SETTLE_S}, log_dir)
    try:
        code = runner.wait(limit_s)
    except subprocess.TimeoutExpired:
        code = None
    wall_s = time.monotonic() - t0
    codes = [_stop(p) for p in [runner] + nodes]
    if code != 0:
        logs = '\n'.join(f.read_text() for f in sorted(log_dir.glob('*.log')))
        raise RuntimeError(f'{task}: demo_runner_node ended with {code} (limit {limit_s} s)\n'
                           f'{logs}')
    index = yaml.safe_load((out_dir / 'dataset.yaml').read_text())
    entries = index['episodes']
    lags = [float(m) for m in re.findall(r'started ([0-9.]+) s after the reset',
                                         (log_dir / 'demo_runner_node.log').read_text())]
    sim_s = sum(e['duration_s'] for e in entries)
    quality = [_bag_quality(out_dir / e['name']) for e in entries]
    all_lags = np.concatenate([np.asarray(q[1] or [0.0]) for q in quality])
    commands = sum(e['message_counts'].get(COMMAND_TOPIC, 0) for e in entries)
    audits = [audit_episode(out_dir / e['name'], index['joint_names'], index['gripper'],
                            COMMAND_TOPIC, control_period_s=1.0 / index['rates'][
                                'control_rate_hz'],
                            settle_s=SETTLE_S, success=e['success']) for e in entries]
    delays = [d for a in audits for d in (a.arm_delay_s, a.grasp_delay_s) if d is not None]
    return {
        'task': task,
        'log_time': log_time,
        # Commands out of step with the joint states, first or last messages missing.
        'misaligned': sum(a.misaligned for a in audits),
        'problems': {a.name: a.problems for a in audits if a.problems},
        'response_delay_s': {'min': round(min(delays, default=0.0), 3),
                             'max': round(max(delays, default=0.0), 3)},
        'episodes': len(entries),
        'complete': sum(e['status'] == 'complete' for e in entries),
        'successes': sum(bool(e['success']) for e in entries),
        # A bag that begins with the cube already moved missed the start of the demo.
        'clean_starts': sum(q[0] for q in quality),
        'receive_lag_s': {'median': round(float(np.median(all_lags)), 3),
                          'p99': round(float(np.percentile(all_lags, 99)), 3),
                          'max': round(float(np.max(all_lags)), 3)},
        'wall_s': round(wall_s, 2),
        'episodes_per_min': round(60.0 * len(entries) / wall_s, 2),
        'sim_s_recorded': round(sim_s, 2),
        'mean_episode_sim_s': round(sim_s / max(1, len(entries)), 2),
        'episode_sim_s': [round(e['duration_s'], 1) for e in entries],
        'sim_s_per_wall_s': round(sim_s / wall_s, 2),
        # Sim seconds the scripted operator acted on a new scene before its recording began.
        'start_lag_sim_s': {'mean': round(sum(lags) / max(1, len(lags)), 3),
                            'max': round(max(lags or [0.0]), 3)},
        # 20 Hz when the teleop keeps up with the sim clock; lower when it is CPU-starved.
        'command_rate_hz': round(commands / max(sim_s, 1e-9), 1),
        'real_time_factor': real_time_factor,
        'exit_codes': dict(zip(['demo_runner_node', 'sim_node', 'teleop_node',
                                'recorder_node'], codes)),
    }


def main() -> None:
    """Parse arguments, run every task, print and optionally write the JSON result."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--tasks', nargs='+', default=['lift', 'pick_place'])
    parser.add_argument('--episodes', type=int, default=10)
    parser.add_argument('--episode-timeout-s', type=float, default=60.0,
                        help='sim seconds before an unsuccessful episode is stopped')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--real-time-factors', '--real-time-factor', type=float, nargs='+',
                        default=[0.0], help='sim_node real_time_factor values, one run each '
                        '(0 = as fast as possible)')
    parser.add_argument('--log-time', choices=('header', 'receipt'), default='header',
                        help='recorder_node log_time')
    parser.add_argument('--limit-s', type=float, default=1800.0,
                        help='wall seconds allowed per task')
    parser.add_argument('--output-dir', default='', help='keep the datasets here (default: temp)')
    parser.add_argument('--json', default='', help='also write the result to this file')
    args = parser.parse_args()
    if args.episodes < 1:
        parser.error(f'--episodes must be >= 1, got {args.episodes}')
    os.environ['ROS_DOMAIN_ID'] = str(random.randint(1, 200))
    os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    with tempfile.TemporaryDirectory(prefix='bench_ros_demos_') as tmp:
        work_dir = Path(args.output_dir or tmp)
        results = []
        for factor in args.real_time_factors:
            for task in args.tasks:
                results.append(run_task(task, args.episodes, args.episode_timeout_s, args.seed,
                                        work_dir, args.limit_s, factor, args.log_time))
                print(json.dumps({k: results[-1][k] for k in (
                    'task', 'real_time_factor', 'episodes_per_min', 'misaligned')}),
                    flush=True)
    result = {'cpu_count': os.cpu_count(), 'load_avg_1min': round(os.getloadavg()[0], 2),
              'misaligned': sum(r['misaligned'] for r in results), 'runs': results}
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + '\n')


if __name__ == '__main__':
    main()
