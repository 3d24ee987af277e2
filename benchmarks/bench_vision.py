r"""
Benchmark camera policies: what each image-encoder choice buys, and the vision bar.

Observations are camera image(s) + joint state only (no object or goal pose); demos are
scripted (seeds 0..N-1), evaluation uses unseen seeds from 1_000_000. Three sub-commands:

``run``: train one variant (resumable: a session stops after ``--session-minutes`` and the
same command continues from ``last/``), then evaluate it; writes OUT/VARIANT/result.json::

    flock /tmp/lam_ros_cpu.lock python benchmarks/bench_vision.py run \
        --variant resnet_shift --dataset lift.safetensors --task lift --steps 600

``evaluate``: evaluate a run directory trained by ``lam-ros train`` (the bar run) the same way.

``report``: gather every OUT/*/result.json into OUT/bench_vision.json, a success-rate bar
chart (success.png, 95 % Wilson intervals) and the training curves (curves.png), and measure
the data path's throughput (windows + uint8 -> torch + random shift, samples/s) against one
optimizer step's, so that a starving loader would show.
"""

import argparse
import glob
import json
import os
import sys
import time
from typing import Any, Dict, List

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from lam_ros.data.dataset.build import Dataset  # noqa: E402
from lam_ros.learn import run_files  # noqa: E402
from lam_ros.learn.augment import augment_images  # noqa: E402
from lam_ros.learn.bc import BCConfig, train_bc  # noqa: E402
from lam_ros.learn.demos import batch_to_torch, episode_windows  # noqa: E402
from lam_ros.learn.evaluate import EVAL_SEED_START, evaluate_policy  # noqa: E402
from lam_ros.policy import load_checkpoint, PolicyConfig  # noqa: E402
from lam_ros.policy.config import camera_name, image_kind  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

STATE_OBS = ('joint_pos', 'gripper_width')
# Variant -> policy config overrides, BC overrides, which cameras ('all' or a name prefix).
VARIANTS: Dict[str, Dict[str, Any]] = {
    'resnet_shift': {'policy': {'image_encoder': 'resnet'}, 'bc': {'image_shift': 4}},
    'resnet_noshift': {'policy': {'image_encoder': 'resnet'}, 'bc': {'image_shift': 0}},
    'cnn_shift': {'policy': {'image_encoder': 'cnn'}, 'bc': {'image_shift': 4}},
    'cnn_noshift': {'policy': {'image_encoder': 'cnn'}, 'bc': {'image_shift': 0}},
    'resnet_shift_scene_only': {'policy': {'image_encoder': 'resnet'},
                                'bc': {'image_shift': 4}, 'cameras': 'scene'},
}


def image_keys(spec: Dict[str, tuple]) -> List[str]:
    """Return the dataset's camera observation keys, sorted."""
    return sorted(k for k in spec if image_kind(k) is not None)


def choose_obs(spec: Dict[str, tuple], cameras: str = 'all', depth: bool = False) -> List[str]:
    """Joint state + the rgb (and optionally depth) images of the chosen cameras."""
    images = [k for k in image_keys(spec)
              if (depth or image_kind(k) == 'rgb') and
              (cameras == 'all' or camera_name(k) == cameras)]
    if not images:
        raise ValueError(f'no camera observation matches cameras={cameras!r} in {sorted(spec)}')
    return [k for k in STATE_OBS if k in spec] + images


def sessions_of(metrics_csv: str) -> Dict[str, Any]:
    """Training steps and wall time summed over resumed sessions (elapsed_s restarts)."""
    rows = run_files.read_metrics(metrics_csv)
    wall, previous, steps = 0.0, 0.0, 0
    for row in rows:
        elapsed = row.get('elapsed_s') or 0.0
        if elapsed < previous:  # a new session started
            wall += previous
        previous = elapsed
        steps = row['step']
    wall += previous
    curve = [{'step': r['step'], 'loss': r['loss'], 'val_loss': r.get('val_loss')}
             for r in rows]
    return {'steps': steps, 'train_wall_s': wall, 'curve': curve}


def evaluate_run(run_dir: str, task: str, episodes: int, gif: str = '') -> Dict[str, Any]:
    """Evaluate run_dir/last on unseen seeds; return the result with training figures."""
    checkpoint = os.path.join(run_dir, 'last')
    model, meta = load_checkpoint(checkpoint)
    train = sessions_of(os.path.join(run_dir, run_files.METRICS_FILE))
    batch = int(meta.get('bc_config', {}).get('batch_size', 0))
    start = time.monotonic()
    result = evaluate_policy(checkpoint, task, episodes=episodes, seed=EVAL_SEED_START,
                             video_path=gif or None)
    result.pop('records')
    result['throughput'] = compute_throughput(model.config, batch or 64)
    result['latency'] = batch1_latency(checkpoint)
    result.update(train, eval_wall_s=time.monotonic() - start, checkpoint=checkpoint,
                  train_episodes=len(meta.get('train_episodes', [])),
                  observations=sorted(model.config.obs_spec),
                  policy_config=model.config.to_dict(), bc_config=meta.get('bc_config'),
                  train_samples_per_s=train['steps'] * batch / max(train['train_wall_s'], 1e-9))
    return result


def cmd_run(args: argparse.Namespace) -> int:
    """Train one variant (resuming), then evaluate it."""
    variant = VARIANTS[args.variant]
    dataset = Dataset.load(args.dataset)
    if args.train_episodes:
        dataset.episodes = dataset.episodes[:args.train_episodes]
    spec = dataset.observation_spec()
    keys = choose_obs(spec, variant.get('cameras', 'all'))
    policy = PolicyConfig(joint_names=tuple(dataset.joint_names),
                          obs_spec={k: spec[k] for k in keys}, control_rate_hz=dataset.rate_hz,
                          robot=dataset.robot or 'panda', history_len=1,
                          **variant['policy'])
    bc = BCConfig(steps=args.steps, batch_size=args.batch_size, eval_interval=args.steps,
                  progress=False, val_fraction=0.0, **variant['bc'])
    run_dir = os.path.join(args.out, args.variant)
    deadline = time.monotonic() + 60.0 * args.session_minutes
    result = train_bc(dataset, policy, bc, run_dir, task=args.task,
                      should_stop=lambda: time.monotonic() > deadline)
    print(f'{args.variant}: step {result.steps}/{args.steps} ({result.wall_time_s:.0f} s this '
          'session)')
    if result.steps < args.steps:
        print('session time is up; run the same command again to continue')
        return 130
    return _evaluate_into(run_dir, args)


def _evaluate_into(run_dir: str, args: argparse.Namespace) -> int:
    path = os.path.join(run_dir, 'result.json')
    if os.path.isfile(path) and not getattr(args, 'force', False):
        print(f'{path} exists (use --force to evaluate again)')
        return 0
    result = evaluate_run(run_dir, args.task, args.eval_episodes, args.gif)
    result['variant'] = getattr(args, 'variant', None) or os.path.basename(run_dir)
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(result, f, indent=2)
    print(f'{result["variant"]}: success {result["successes"]}/{result["episodes"]} '
          f'after {result["steps"]} steps, {result["train_wall_s"]:.0f} s of training '
          f'({result["train_samples_per_s"]:.0f} samples/s) -> {path}')
    return 0


def throughput(dataset_path: str, batch_size: int, steps: int = 10) -> Dict[str, Any]:
    """Samples/s of the data path alone and of full optimizer steps (resnet, shift 4)."""
    dataset = Dataset.load(dataset_path)
    spec = dataset.observation_spec()
    keys = choose_obs(spec)
    config = PolicyConfig(joint_names=tuple(dataset.joint_names),
                          obs_spec={k: spec[k] for k in keys}, control_rate_hz=dataset.rate_hz,
                          robot=dataset.robot or 'panda', history_len=1, image_encoder='resnet')
    windows = episode_windows(dataset.episodes, config)
    gen = torch.Generator().manual_seed(0)
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    for _ in range(steps * 5):
        batch = batch_to_torch(windows.batch(rng.integers(0, len(windows), batch_size)),
                               torch.device('cpu'), True)
        augment_images(batch[0], config.image_keys, 4, gen)
    loader = steps * 5 * batch_size / (time.perf_counter() - start)
    from lam_ros.policy import compute_stats, TransformerPolicy
    model = TransformerPolicy(config)
    arrays = {k: np.concatenate([ep.obs[k] for ep in dataset.episodes]).astype(np.float32)
              for k in config.lowdim_keys}
    arrays['action'] = np.concatenate([ep.action for ep in dataset.episodes])
    model.normalizer.fit(compute_stats(arrays))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    timings = []
    for i in range(steps + 1):
        t0 = time.perf_counter()
        batch = batch_to_torch(windows.batch(rng.integers(0, len(windows), batch_size)),
                               torch.device('cpu'), True)
        augment_images(batch[0], config.image_keys, 4, gen)
        loss = model.loss(*batch)['loss']
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if i:
            timings.append(time.perf_counter() - t0)
    return {'batch_size': batch_size, 'observations': keys,
            'loader_samples_per_s': loader,
            'train_step_samples_per_s': batch_size / float(np.mean(timings)),
            'torch_threads': torch.get_num_threads()}


def synthetic_windows(config: PolicyConfig, episodes: int = 20, length: int = 60) -> Any:
    """Random episodes with the config's observation shapes (uint8 images) as windows."""
    from lam_ros.data.dataset.windows import Windows
    rng = np.random.default_rng(0)
    obs = [{k: (rng.integers(0, 256, (length,) + shape, dtype=np.uint8)
                if image_kind(k) == 'rgb' else
                rng.random((length,) + shape).astype(np.float32))
            for k, shape in config.obs_spec.items()} for _ in range(episodes)]
    actions = [rng.random((length, config.action_dim)).astype(np.float32)
               for _ in range(episodes)]
    return Windows(obs, actions, config.history_len, config.chunk_size)


def compute_throughput(config: PolicyConfig, batch_size: int, steps: int = 10) -> Dict[str, Any]:
    """
    Samples/s of the data path alone and of whole optimizer steps, for this config.

    The data path is what BC does before the model: window gather (uint8 images), to torch,
    random shift. Synthetic episodes of the config's shapes cost the same as recorded ones.
    """
    from lam_ros.policy import compute_stats, TransformerPolicy
    windows = synthetic_windows(config)
    gen = torch.Generator().manual_seed(0)
    rng = np.random.default_rng(0)

    def draw() -> tuple:
        batch = batch_to_torch(windows.batch(rng.integers(0, len(windows), batch_size)),
                               torch.device('cpu'), True)
        augment_images(batch[0], config.image_keys, 4, gen)
        return batch

    draw()
    start = time.perf_counter()
    for _ in range(5 * steps):
        draw()
    loader = 5 * steps * batch_size / (time.perf_counter() - start)
    torch.manual_seed(0)
    model = TransformerPolicy(config).train()
    stats = {k: np.concatenate([windows._obs[k]]) for k in config.lowdim_keys}
    stats['action'] = windows._action
    model.normalizer.fit(compute_stats(stats))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    timings = []
    for i in range(steps + 1):
        t0 = time.perf_counter()
        loss = model.loss(*draw())['loss']
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if i:  # the first step warms up
            timings.append(time.perf_counter() - t0)
    return {'batch_size': batch_size, 'loader_samples_per_s': loader,
            'train_step_samples_per_s': batch_size / float(np.mean(timings)),
            'torch_threads': torch.get_num_threads()}


def batch1_latency(checkpoint: str, calls: int = 100) -> Dict[str, Any]:
    """Batch-1 predict() latency (ms) of the checkpoint: eager PyTorch and ONNX Runtime."""
    import tempfile
    from lam_ros.policy.export import example_inputs, export_policy, load_backend
    out: Dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        export_policy(checkpoint, out_dir=tmp, formats=('onnx',), check_batch=1, seeds=1)
        backends = {'eager': load_backend(checkpoint),
                    'onnx': load_backend(tmp, 'onnx', threads=torch.get_num_threads())}
        for name, backend in backends.items():
            inputs = example_inputs(backend.config, 1, seed=0)
            obs = {k: v for k, v in inputs.items() if k != 'obs_mask'}
            for _ in range(5):
                backend.predict(obs, inputs['obs_mask'])
            times = []
            for _ in range(calls):
                t0 = time.perf_counter()
                backend.predict(obs, inputs['obs_mask'])
                times.append(1000.0 * (time.perf_counter() - t0))
            out[name] = {'p50_ms': float(np.percentile(times, 50)),
                         'p90_ms': float(np.percentile(times, 90)), 'calls': calls}
    return out


def cmd_report(args: argparse.Namespace) -> int:
    """Collect results, plot them, measure throughput; write OUT/bench_vision.json."""
    results = []
    for path in sorted(glob.glob(os.path.join(args.out, '*', 'result.json'))):
        with open(path, encoding='utf-8') as f:
            results.append(json.load(f))
    if not results:
        print(f'error: no OUT/*/result.json under {args.out}', file=sys.stderr)
        return 2
    report: Dict[str, Any] = {'results': results}
    if args.dataset:
        report['throughput'] = throughput(args.dataset, args.batch_size)
    print(f'{"variant":>28s} {"obs":>40s} {"steps":>6s} {"train s":>8s} {"success":>8s} '
          f'{"95% CI":>13s}')
    for r in results:
        low, high = r['success_ci95']
        print(f'{r["variant"]:>28s} {",".join(r["observations"]):>40s} {r["steps"]:6d} '
              f'{r["train_wall_s"]:8.0f} {r["success_rate"]:8.0%} '
              f'{f"{low:.0%}-{high:.0%}":>13s}')
    if 'throughput' in report:
        t = report['throughput']
        print(f'data path {t["loader_samples_per_s"]:.0f} samples/s, optimizer steps '
              f'{t["train_step_samples_per_s"]:.0f} samples/s (batch {t["batch_size"]})')
    _plot(results, args.out)
    path = os.path.join(args.out, 'bench_vision.json')
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(report, f, indent=2)
    print(f'report: {path}')
    return 0


def _plot(results: List[Dict[str, Any]], out: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib import pyplot as plt
    names = [r['variant'] for r in results]
    rates = np.array([r['success_rate'] for r in results])
    ci = np.array([r['success_ci95'] for r in results]).T
    fig, ax = plt.subplots(figsize=(1.6 * len(results) + 2, 4))
    ax.bar(names, rates, yerr=[rates - ci[0], ci[1] - rates], capsize=4)
    ax.set_ylabel('success rate (unseen seeds)')
    ax.set_ylim(0, 1)
    ax.tick_params(axis='x', rotation=30)
    fig.tight_layout()
    fig.savefig(os.path.join(out, 'success.png'))
    fig, ax = plt.subplots(figsize=(7, 4))
    for r in results:
        ax.plot([c['step'] for c in r['curve']], [c['loss'] for c in r['curve']],
                label=r['variant'])
    ax.set_xlabel('step')
    ax.set_ylabel('training loss (L1, normalised actions)')
    ax.set_yscale('log')
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(out, 'curves.png'))
    plt.close('all')


def main() -> int:
    """Parse the sub-command and run it."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    sub = parser.add_subparsers(dest='command', required=True)
    run = sub.add_parser('run', help='train (resumable) and evaluate one variant')
    run.add_argument('--variant', required=True, choices=sorted(VARIANTS))
    run.add_argument('--dataset', required=True, help='dataset cache with camera images')
    run.add_argument('--steps', type=int, default=600)
    run.add_argument('--batch-size', type=int, default=64)
    run.add_argument('--train-episodes', type=int, default=0, help='first N episodes (0: all)')
    run.add_argument('--session-minutes', type=float, default=14.0,
                     help='stop this session after so many minutes (rerun to resume)')
    evaluate = sub.add_parser('evaluate', help='evaluate a lam-ros train run directory')
    evaluate.add_argument('--run', required=True, help='run directory (its last/ is used)')
    evaluate.add_argument('--force', action='store_true')
    for p in (run, evaluate):
        p.add_argument('--task', required=True, choices=('lift', 'pick_place'))
        p.add_argument('--out', default='bench_vision')
        p.add_argument('--eval-episodes', type=int, default=100)
        p.add_argument('--gif', default='', help='also record the first 2 episodes here')
    report = sub.add_parser('report', help='gather results, plots, throughput')
    report.add_argument('--out', default='bench_vision')
    report.add_argument('--dataset', default='', help='measure throughput on this cache')
    report.add_argument('--batch-size', type=int, default=64)
    args = parser.parse_args()
    if args.command == 'run':
        return cmd_run(args)
    if args.command == 'evaluate':
        return _evaluate_into(args.run, args)
    return cmd_report(args)


if __name__ == '__main__':
    sys.exit(main())
