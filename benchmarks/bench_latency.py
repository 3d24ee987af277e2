"""
Benchmark the policy's forward latency at batch 1 on the CPU, per execution backend.

Run (under the shared lock so that nothing else runs on the cores)::

    flock /tmp/lam_ros_cpu.lock python benchmarks/bench_latency.py --json bench_latency.json

For each size (``default``: the PolicyConfig defaults, 0.13 M parameters; ``20m``: d 512,
6 encoder layers, chunk 100, 20.5 M; ``vision``: joint state + an 84x84 rgb image through the
ResNet-GN keypoint encoder) a checkpoint with random weights is saved and exported (and so is
every trained checkpoint given with ``--checkpoint``),
then every backend answers the same batch-1 observation through ``PolicyBackend.predict``
(numpy in, numpy chunk out: exactly what the inference node pays): ``eager`` (PyTorch),
``compiled`` (torch.compile), ``torchscript``, ``export`` (torch.export) and ``onnx``
(onnxruntime, as many intra-op threads as torch). Rounds are interleaved (a short block of
calls per backend per round, in a shuffled order, the first call of each block untimed) so
that a disturbance hits every backend alike.
Each backend's chunk is also compared with eager's (max abs difference, rad / m).
"""

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import time
from typing import Any, Callable, Dict, List, Sequence

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from lam_ros.policy import PolicyConfig, save_checkpoint, TransformerPolicy  # noqa: E402
from lam_ros.policy.export import (example_inputs, export_policy, load_backend,  # noqa: E402
                                   PolicyBackend)
import numpy as np  # noqa: E402
import torch  # noqa: E402

JOINTS = tuple(f'panda_joint{i}' for i in range(1, 8)) + ('panda_finger_joint1',)
# The lift task's default observations (lam-ros train).
OBS_SPEC = {'joint_pos': (8,), 'joint_vel': (8,), 'gripper_width': (1,), 'object_pose': (7,)}
# A camera policy as the vision bar trains it: joint state + one 84x84 rgb image, ResNet-GN +
# spatial-softmax encoder, one history step.
VISION_OBS = {'joint_pos': (8,), 'gripper_width': (1,), 'scene_rgb': (84, 84, 3)}
SIZES = {'default': {}, '20m': {'d_model': 512, 'n_heads': 8, 'n_layers': 6, 'chunk_size': 100},
         'vision': {'obs_spec': VISION_OBS, 'history_len': 1, 'image_encoder': 'resnet'}}


def build_checkpoint(directory: str, size: str) -> str:
    """Save a randomly initialised policy of the named size; return its directory."""
    torch.manual_seed(0)
    model = TransformerPolicy(PolicyConfig(joint_names=JOINTS,
                                           **{'obs_spec': OBS_SPEC, **SIZES[size]}))
    return save_checkpoint(os.path.join(directory, size), model, {'size': size})


def checkpoints(directory: str, sizes: str, extra: Sequence[str]) -> List[tuple]:
    """Return (label, checkpoint dir) for every named size and every given checkpoint."""
    out = [(size, build_checkpoint(directory, size)) for size in sizes.split(',') if size]
    for i, path in enumerate(extra):
        out.append((f'ckpt{i}:{os.path.basename(os.path.normpath(path))}', path))
    return out


def measure(backends: Dict[str, PolicyBackend], rounds: int, warmup: int, block: int = 5,
            seed: int = 0) -> Dict[str, Dict[str, float]]:
    """
    Time predict() of every backend on one batch-1 observation, rounds interleaved.

    Each round gives every backend (in a shuffled order) a block of calls and times all but
    the first: a node runs one backend, so the wake-up of a thread pool that another backend
    left idle is not part of its latency.
    """
    config = next(iter(backends.values())).config
    inputs = example_inputs(config, batch=1, seed=seed)
    obs, mask = {k: v for k, v in inputs.items() if k != 'obs_mask'}, inputs['obs_mask']
    reference = backends['eager'].predict(obs, mask) if 'eager' in backends else None
    times: Dict[str, List[float]] = {name: [] for name in backends}
    order = list(backends)
    rng = random.Random(seed)
    for i in range(warmup + -(-rounds // (block - 1))):
        rng.shuffle(order)
        for name in order:
            for j in range(block):
                start = time.perf_counter()
                backends[name].predict(obs, mask)
                if i >= warmup and j > 0:
                    times[name].append(time.perf_counter() - start)
    out = {}
    for name, samples in times.items():
        ms = 1000.0 * np.asarray(samples)
        out[name] = {f'p{q}_ms': float(np.percentile(ms, q)) for q in (50, 90, 99)}
        out[name]['mean_ms'] = float(ms.mean())
        out[name]['calls'] = len(samples)
        if reference is not None:
            out[name]['max_abs_diff_vs_eager'] = float(
                np.abs(backends[name].predict(obs, mask) - reference).max())
    return out


def timed_load(loader: Callable[[], PolicyBackend], warm: Callable[[PolicyBackend], Any]
               ) -> tuple:
    """Build a backend and run it once (compilation happens there); return (backend, s)."""
    start = time.monotonic()
    backend = loader()
    warm(backend)
    return backend, time.monotonic() - start


def print_table(title: str, sizes: Sequence[Dict[str, Any]]) -> None:
    """Print p50 / p99 per backend and size, with the speed-up over eager."""
    print(f'\n{title}')
    print(f'{"size":>8s} {"params":>8s} {"backend":>16s} {"p50 ms":>9s} {"p99 ms":>9s} '
          f'{"vs eager":>9s} {"max |diff|":>10s}')
    for entry in sizes:
        base = entry['results'].get('eager', {}).get('p50_ms')
        for name, r in entry['results'].items():
            ratio = f'{base / r["p50_ms"]:.2f}x' if base else ''
            diff = r.get('max_abs_diff_vs_eager')
            print(f'{entry["size"]:>8s} {entry["num_parameters"] / 1e6:>7.2f}M {name:>16s} '
                  f'{r["p50_ms"]:9.3f} {r["p99_ms"]:9.3f} {ratio:>9s} '
                  f'{"" if diff is None else f"{diff:.1e}":>10s}')


def main() -> int:
    """Measure every backend at every size on the CPU and write the JSON report."""
    parser = argparse.ArgumentParser(description=__doc__.strip().split('\n\n')[0])
    parser.add_argument('--sizes', default=','.join(SIZES),
                        help='comma-separated (default: all)')
    parser.add_argument('--checkpoint', action='append', default=[], metavar='DIR',
                        help='also measure this checkpoint (e.g. a trained camera policy; its '
                             'exports go to DIR/export); repeatable')
    parser.add_argument('--threads', type=int, default=2, help='torch / onnxruntime threads')
    parser.add_argument('--rounds', type=int, default=300, help='timed calls per backend')
    parser.add_argument('--warmup', type=int, default=4, help='untimed rounds')
    parser.add_argument('--no-compile', action='store_true', help='skip torch.compile')
    parser.add_argument('--json', default='bench_latency.json', help='result file')
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    report = {'device': 'cpu', 'cpu': platform.processor() or platform.machine(),
              'cpu_count': os.cpu_count(), 'threads': args.threads, 'rounds': args.rounds,
              'torch': torch.__version__, 'onnxruntime': _version('onnxruntime'),
              'observations': OBS_SPEC, 'sizes': []}
    with tempfile.TemporaryDirectory() as tmp:
        for size, path in checkpoints(tmp, args.sizes, args.checkpoint):
            export = export_policy(path, check_batch=1, seeds=1)
            obs = example_inputs(load_backend(path).config, 1)
            warm = (lambda b: b.predict({k: v for k, v in obs.items() if k != 'obs_mask'},
                                        obs['obs_mask']))
            loaders = {'eager': lambda: load_backend(path),
                       'torchscript': lambda: load_backend(path, 'torchscript'),
                       'export': lambda: load_backend(path, 'export'),
                       'onnx': lambda: load_backend(path, 'onnx', threads=args.threads)}
            if not args.no_compile:
                loaders['compiled'] = lambda: load_backend(path, compiled=True)
            backends, setup_s = {}, {}
            for name, loader in loaders.items():
                backends[name], setup_s[name] = timed_load(loader, warm)
            entry = {'size': size, 'policy_config': backends['eager'].config.to_dict(),
                     'num_parameters': backends['eager'].document['num_parameters'],
                     'export_parity_max_abs_error': export['parity_max_abs_error'],
                     'setup_s': setup_s,
                     'results': measure(backends, args.rounds, args.warmup)}
            report['sizes'].append(entry)
            print_table(f'{size}: batch 1, CPU, {args.threads} threads', [entry])
    with open(args.json, 'w', encoding='utf-8') as f:
        json.dump(report, f, indent=2)
    print(f'\nreport: {args.json}')
    return 0


def _version(module: str) -> str:
    try:
        return __import__(module).__version__
    except ImportError:
        return 'not installed'


if __name__ == '__main__':
    sys.exit(main())
