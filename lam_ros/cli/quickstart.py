"""
``lam-ros quickstart``: the whole loop on the embedded PyBullet Panda, through ROS 2.

1. scripted-teleop demonstrations: sim_node, teleop_node (scripted expert), recorder_node
   and demo_runner_node talk over DDS; the recorder writes one rosbag2 bag per episode;
2. ``lam-ros dataset build`` turns those bags into the training dataset;
3. the training pipeline that trainer_node runs (``lam-ros pipeline``): behaviour cloning,
   RL fine-tuning in PyBullet, evaluation of both on the same unseen seeded episodes, export
   of the better one;
4. ``lam-ros eval --gif``: a GIF of the exported policy at work;
5. inference_node drives sim_node over DDS on seeded episodes (the first seeds of step 3's
   evaluation); recorder_node keeps them as bags and the outcome comes from /task_success.

The nodes are child processes on a private ROS_DOMAIN_ID (unless ROS_DOMAIN_ID is set),
stopped when their step ends, fails or is interrupted. Running the command again reuses the
bags, dataset and checkpoints (training resumes); --fresh starts over. The summary with the
success rate of every stage goes to OUT/quickstart.json.
"""

import argparse
import importlib.util
import json
import os
import re
import shlex
import shutil
import signal
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Optional

COMMAND = 'quickstart'
HELP = 'the whole loop through ROS 2: demos -> dataset -> BC -> RL -> evaluation -> inference'
RECORD_REAL_TIME_FACTOR = 0.0
"""Sim speed while recording: as fast as it goes; sim_node's lockstep keeps it aligned."""
# Sizes of the two modes; --demos, --eval-episodes, --ros-episodes and --set override them.
MODES = {
    'default': {'demos': 50, 'eval_episodes': 30, 'ros_episodes': 10, 'video_episodes': 2,
                'train': {'bc_steps': 1500, 'rl_env_steps': 20_000, 'rl_num_envs': 2,
                          'rl_eval_interval': 10_000, 'rl_eval_episodes': 10}},
    'quick': {'demos': 10, 'eval_episodes': 10, 'ros_episodes': 3, 'video_episodes': 1,
              'train': {'bc_steps': 300, 'bc_eval_interval': 100, 'rl_env_steps': 2048,
                        'rl_num_envs': 2, 'rl_rollout_steps': 64, 'rl_eval_interval': 1024,
                        'rl_eval_episodes': 5}},
}
_EPISODE_LINE = re.compile(r'episode (\d+)/\d+: (success|timed out)')


def register(subparsers: Any) -> None:
    """Add the ``quickstart`` sub-command."""
    from lam_ros.cli._checks import non_negative, positive, task_name
    from lam_ros.description import TASK_NAMES
    parser = subparsers.add_parser(
        COMMAND, help=HELP, description=__doc__.split('\n\n', 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--task', default='lift', type=task_name,
                        help=f'task to learn: {", ".join(TASK_NAMES)} (default: %(default)s)')
    parser.add_argument('--out', default='runs/quickstart', metavar='DIR',
                        help='where bags, dataset, checkpoints and results go '
                             '(default: %(default)s)')
    parser.add_argument('--quick', action='store_true',
                        help='a few-minute look: few demos, short training, few episodes '
                             '(default: the full run, under 30 min on 2 cores)')
    parser.add_argument('--fresh', action='store_true',
                        help="delete this command's earlier results in OUT and start over "
                             '(default: reuse them and resume)')
    parser.add_argument('--demos', type=positive(int), default=None,
                        help='demonstrations to record (default: 50, quick 10)')
    parser.add_argument('--eval-episodes', type=positive(int), default=None,
                        help='in-process evaluation episodes of BC and RL (default: 30, '
                             'quick 10)')
    parser.add_argument('--ros-episodes', type=positive(int), default=None,
                        help='episodes driven by inference_node over ROS (default: 10, '
                             'quick 3)')
    parser.add_argument('--video-episodes', type=non_negative(int), default=None,
                        help='episodes in the GIF, 0 = no GIF (default: 2, quick 1)')
    parser.add_argument('--set', action='append', default=[], metavar='NAME=VALUE',
                        help='a training pipeline parameter (config/train.yaml), e.g. --set '
                             "bc_steps=500 (default: the mode's sizes)")
    parser.set_defaults(func=run)


class Paths:
    """Where each stage writes, under --out."""

    def __init__(self, out: str, task: str) -> None:
        """Name every artefact of ``task`` under ``out``."""
        self.out = out
        self.demos = os.path.join(out, f'demos_{task}')
        self.dataset = os.path.join(out, f'dataset_{task}.safetensors')
        self.training = os.path.join(out, f'training_{task}')
        self.gif = os.path.join(out, f'policy_{task}.gif')
        self.gif_json = os.path.join(out, f'policy_{task}_gif.json')
        self.ros_eval = os.path.join(out, f'ros_eval_{task}')
        self.logs = os.path.join(out, 'logs')
        self.summary = os.path.join(out, 'quickstart.json')

    def owned(self) -> List[str]:
        """Return what --fresh deletes (only what this command writes)."""
        return [self.demos, self.dataset, self.training, self.gif, self.gif_json,
                self.ros_eval, self.logs, self.summary]


def _header(title: str, command: str = '') -> None:
    print(f'\n== {title}' + (f'\n$ {command}' if command else ''), flush=True)


def _lam_ros(argv: List[str]) -> None:
    from lam_ros.cli import main
    print(f'$ lam-ros {shlex.join(argv)}', flush=True)
    code = main(argv)
    if code != 0:
        raise SystemExit(f'quickstart stopped: `lam-ros {shlex.join(argv)}` exited with {code}')


def _episodes(directory: str) -> List[Dict[str, Any]]:
    from lam_ros.data.bags.source import read_dataset_yaml
    return list((read_dataset_yaml(directory) or {}).get('episodes') or [])


def _rate(entries: List[Dict[str, Any]], directory: str) -> Dict[str, Any]:
    ok = sum(bool(e.get('success')) for e in entries)
    return {'success_rate': ok / len(entries) if entries else None, 'successes': ok,
            'episodes': len(entries), 'bags': os.path.abspath(directory)}


def _run_episodes(nodes: Any, runner: Dict[str, Any], total: int, desc: str,
                  limit_s: float) -> None:
    """Start demo_runner_node, show its episodes as a progress bar, wait for it to finish."""
    from lam_ros.cli._progress import episode_progress
    nodes.start('demo_runner_node', dict(runner, episodes=total, use_sim_time=True,
                                         service_timeout_s=300.0))
    seen = [0]
    with episode_progress(total, desc) as done:
        def poll() -> None:
            try:
                text = nodes.log('demo_runner_node').read_text(errors='replace')
            except OSError:
                return
            lines = _EPISODE_LINE.findall(text)
            for _index, outcome in lines[seen[0]:]:
                done(outcome == 'success')
            seen[0] = len(lines)
        nodes.wait('demo_runner_node', limit_s, poll)


def record_demos(paths: Paths, task: str, wanted: int) -> Dict[str, Any]:
    """Stage 1: record the demonstrations still missing through ROS; return the expert's rate."""
    from lam_ros.cli._nodes import NodeGroup, ros_environment
    entries = _episodes(paths.demos)
    have = sum(e.get('status') == 'complete' for e in entries)  # not one cut by a Ctrl-C
    if have >= wanted:
        print(f'reusing {have} recorded episodes in {paths.demos} (--fresh records anew)')
    else:
        env = ros_environment()
        log_dir = os.path.join(paths.logs, 'record')
        print(f'nodes: sim_node (real_time_factor {RECORD_REAL_TIME_FACTOR:g}), teleop_node '
              f'(scripted expert), recorder_node, demo_runner_node on ROS_DOMAIN_ID '
              f'{env["ROS_DOMAIN_ID"]}; logs in {log_dir}', flush=True)
        with NodeGroup(log_dir, env) as nodes:
            nodes.start('sim_node', {'task': task, 'seed': len(entries),
                                     'real_time_factor': RECORD_REAL_TIME_FACTOR})
            nodes.start('teleop_node', {'source': 'scripted', 'task': task, 'use_sim_time': True,
                                        'expert_seed': len(entries),
                                        'expert_waits_for': '/recorder_node/status'})
            nodes.start('recorder_node', {'output_dir': paths.demos, 'task': task,
                                          'use_sim_time': True})
            _run_episodes(nodes, {'episode_timeout_s': 60.0}, wanted - have,
                          f'record {task}', 600.0 + 120.0 * (wanted - have))
    result = _rate([e for e in _episodes(paths.demos) if e.get('status') == 'complete'],
                   paths.demos)
    print(f'expert (scripted teleop through ROS): {_percent(result)}; bags: {paths.demos}')
    return result


def ros_inference(paths: Paths, task: str, checkpoint: str, episodes: int,
                  first_seed: int) -> Dict[str, Any]:
    """Stage 5: inference_node drives sim_node for ``episodes`` seeded episodes."""
    from lam_ros.cli._nodes import NodeGroup, ros_environment
    from lam_ros.description import get_task
    from lam_ros.policy import read_checkpoint_config
    rate_hz = float(read_checkpoint_config(checkpoint)['control_rate_hz'])
    limit_s = get_task(task).default_max_episode_steps / rate_hz
    if os.path.isdir(paths.ros_eval):
        shutil.rmtree(paths.ros_eval)  # an evaluation of this run's policy only
    env = ros_environment()
    log_dir = os.path.join(paths.logs, 'inference')
    print(f'nodes: sim_node (real time, seeds {first_seed}..{first_seed + episodes - 1}), '
          f'inference_node ({checkpoint}), recorder_node, demo_runner_node on ROS_DOMAIN_ID '
          f'{env["ROS_DOMAIN_ID"]}; {limit_s:g} s per episode; logs in {log_dir}', flush=True)
    with NodeGroup(log_dir, env) as nodes:
        nodes.start('inference_node', {'checkpoint': checkpoint, 'autostart': True,
                                       'device': 'cpu', 'policy_threads': 1})
        # Each reset draws the next seed: the episodes use first_seed, first_seed + 1, ...
        nodes.start('sim_node', {'task': task, 'seed': first_seed - 1, 'real_time_factor': 1.0})
        nodes.start('recorder_node', {'output_dir': paths.ros_eval, 'task': task,
                                      'use_sim_time': True})
        _run_episodes(nodes, {'episode_timeout_s': limit_s,
                              'teleop_reset_service': '/inference_node/reset'},
                      episodes, f'inference_node {task}', 600.0 + 60.0 * episodes)
    result = dict(_rate(_episodes(paths.ros_eval), paths.ros_eval), first_seed=first_seed,
                  checkpoint=os.path.abspath(checkpoint))
    print(f'policy through ROS (inference_node -> sim_node): {_percent(result)}; bags: '
          f'{paths.ros_eval}')
    return result


def _percent(result: Optional[Dict[str, Any]]) -> str:
    if not result or result.get('success_rate') is None:
        return 'n/a'
    return (f'{100 * result["success_rate"]:.0f} % ({result.get("successes", "?")}/'
            f'{result["episodes"]} episodes)')


def train(paths: Paths, task: str, sizes: Dict[str, Any]) -> Any:
    """Stage 3: the trainer node's pipeline, with a progress bar per stage; its result."""
    from tqdm import tqdm

    from lam_ros.cli.pipeline import _graceful_stop
    from lam_ros.learn.pipeline import run_pipeline
    from lam_ros.learn.pipeline_config import load_pipeline_config
    config = load_pipeline_config(None, dict(sizes, dataset=paths.dataset,
                                             output_dir=paths.training, task=task))
    print(f'$ lam-ros pipeline --dataset {paths.dataset} --output {paths.training} '
          + ' '.join(f'--set {k}={v}' for k, v in sorted(sizes.items())), flush=True)
    bars: Dict[str, Any] = {}

    def show(progress: Any) -> None:
        if not progress.total_steps or progress.stage in ('done', 'cancelled', 'failed'):
            return  # the dataset stage and the end: nothing to count
        bar = bars.get(progress.stage)
        if bar is None:
            for old in bars.values():
                old.close()
            bars.clear()
            bar = bars[progress.stage] = tqdm(total=progress.total_steps or None,
                                              desc=progress.stage, unit='step')
        bar.n = progress.step
        postfix = {}
        if progress.loss is not None:
            postfix['loss'] = f'{progress.loss:.3f}'
        if progress.success_rate is not None:
            postfix['success'] = f'{100 * progress.success_rate:.0f}%'
        bar.set_postfix(postfix, refresh=False)
        bar.refresh()

    handlers = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
    stop = _graceful_stop()
    try:
        return run_pipeline(config, on_progress=show, should_stop=lambda: stop[0])
    finally:
        for bar in bars.values():
            bar.close()
        if handlers[0] is not None:
            signal.signal(signal.SIGINT, handlers[0])
            signal.signal(signal.SIGTERM, handlers[1])


def _sizes(args: argparse.Namespace) -> Dict[str, Any]:
    from lam_ros.cli.pipeline import overrides_from
    mode = MODES['quick' if args.quick else 'default']
    for name in ('demos', 'eval_episodes', 'ros_episodes', 'video_episodes'):
        if getattr(args, name) is None:
            setattr(args, name, mode[name])
    sizes = dict(mode['train'], eval_episodes=args.eval_episodes)
    extra = argparse.Namespace(set=args.set, dataset=None, output=None)
    sizes.update(overrides_from(extra))
    for name in ('dataset', 'output_dir', 'task'):
        if name in sizes:
            raise ValueError(f'--set {name}: quickstart sets it (use --out and --task)')
    return sizes


def _stages(args: argparse.Namespace, paths: Paths, sizes: Dict[str, Any],
            summary: Dict[str, Any], save: Callable[[], None]) -> int:
    task = args.task
    _header('1/5 scripted-teleop demonstrations through ROS 2 (rosbag2 episodes)')
    summary['expert'] = record_demos(paths, task, args.demos)
    save()
    _header('2/5 training dataset from the bags')
    _lam_ros(['dataset', 'build', paths.demos, '--out', paths.dataset])
    summary['dataset'] = os.path.abspath(paths.dataset)
    _header('3/5 behaviour cloning -> RL fine-tuning -> evaluation (the trainer pipeline)')
    result = train(paths, task, sizes)
    with open(os.path.join(paths.training, 'pipeline.json'), encoding='utf-8') as stream:
        stages = json.load(stream).get('stages', {})
    for stage in ('bc', 'rl'):
        if stage in stages and stage in result.evaluations:
            evaluation = result.evaluations.get(stage, {})
            summary[stage] = dict(evaluation, curves=os.path.abspath(stages[stage].get(
                'curves') or ''), successes=round(evaluation.get('success_rate', 0.0)
                                                  * evaluation.get('episodes', 0)))
            print(f'{stage.upper()}: {_percent(summary[stage])} in-process on seeds from '
                  f'{summary[stage].get("seed", "?")}; curves: {summary[stage]["curves"]}')
    if result.status != 'done':
        print(f'stopped; last checkpoint {result.last_checkpoint or "none"}; run the same '
              'command again to resume')
        return 130
    summary['policy'] = {'checkpoint': os.path.abspath(result.best_checkpoint),
                         'stage': result.chosen}
    print(f'exported the {result.chosen.upper()} policy to {result.best_checkpoint}')
    save()
    if args.video_episodes:
        _header('4/5 a GIF of the exported policy')
        _lam_ros(['eval', '--checkpoint', result.best_checkpoint, '--episodes',
                  str(args.video_episodes), '--video-episodes', str(args.video_episodes),
                  '--gif', paths.gif, '--json', paths.gif_json])
        summary['gif'] = os.path.abspath(paths.gif)
    _header('5/5 the exported policy driving the simulated arm through ROS 2 (inference_node)')
    summary['ros_inference'] = ros_inference(paths, task, result.best_checkpoint,
                                             args.ros_episodes, int(result.evaluations[
                                                 result.chosen]['seed']))
    return 0


def run(args: argparse.Namespace) -> int:
    """Run the five stages; stop at the first that fails, always stopping the nodes."""
    from lam_ros.cli._checks import writable_dir
    from lam_ros.cli._nodes import NodeFailed
    try:
        if importlib.util.find_spec('rclpy') is None:
            raise ValueError('quickstart runs its nodes through ROS 2 and needs rclpy: bash '
                             'scripts/setup.sh installs its wheels, or source a ROS 2 distro '
                             '(without ROS: lam-ros demos, lam-ros pipeline, lam-ros eval)')
        sizes = _sizes(args)
        from lam_ros.learn.pipeline_config import load_pipeline_config
        load_pipeline_config(None, dict(sizes, dataset='', task=args.task))
        writable_dir(args.out, '--out')
    except ValueError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    paths = Paths(args.out, args.task)
    if args.fresh:
        for path in paths.owned():
            if os.path.isdir(path):
                shutil.rmtree(path)
            elif os.path.exists(path):
                os.remove(path)
    os.makedirs(args.out, exist_ok=True)
    start = time.monotonic()
    summary: Dict[str, Any] = {'task': args.task, 'mode': 'quick' if args.quick else 'default',
                               'out': os.path.abspath(args.out), 'sizes': sizes}

    def save() -> None:
        summary['wall_s'] = round(time.monotonic() - start, 1)
        tmp = paths.summary + '.tmp'
        with open(tmp, 'w', encoding='utf-8') as stream:
            json.dump(summary, stream, indent=2)
        os.replace(tmp, paths.summary)

    main_thread = threading.current_thread() is threading.main_thread()
    sigterm = signal.getsignal(signal.SIGTERM)
    if main_thread:  # SIGTERM, as Ctrl-C, unwinds through the stages: the nodes stop too
        signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        code = _stages(args, paths, sizes, summary, save)
    except NodeFailed as err:
        print(f'quickstart stopped: {err}', file=sys.stderr)
        code = 1
    finally:
        save()
        if main_thread and sigterm is not None:
            signal.signal(signal.SIGTERM, sigterm)
    if code == 0:
        _report(summary, paths)
    return code


def _report(summary: Dict[str, Any], paths: Paths) -> None:
    rows = [('expert (scripted teleop, ROS)', summary.get('expert')),
            ('behaviour cloning', summary.get('bc')), ('RL fine-tuning', summary.get('rl')),
            ('inference_node over ROS', summary.get('ros_inference'))]
    print(f'\nquickstart done in {summary["wall_s"] / 60:.1f} min; success rate per stage:')
    for name, result in rows:
        print(f'  {name:32s} {_percent(result)}')
    policy = summary.get('policy', {})
    print(f'artefacts: demos {paths.demos}/, dataset {paths.dataset}, checkpoints '
          f'{paths.training}/ (exported: {policy.get("checkpoint", "")}), curves '
          f'{", ".join(summary[s]["curves"] for s in ("bc", "rl") if s in summary)}, GIF '
          f'{summary.get("gif", "none")}, ROS evaluation bags {paths.ros_eval}/, logs '
          f'{paths.logs}/, summary {paths.summary}')
