"""
Benchmark our policy's forward latency against LeRobot's ACT at equal parameter count.

LeRobot needs its own torch, so this runs from a separate venv that holds both (never the
repository's)::

    python3 -m venv /work/act_venv
    /work/act_venv/bin/pip install torch==2.14.1 torchvision==0.29.1 lerobot==0.3.2
    /work/act_venv/bin/pip install --no-deps .          # from the repository root
    flock /tmp/lam_ros_cpu.lock /work/act_venv/bin/python benchmarks/bench_vs_act.py

State-only observations: ACT gets ``observation.state`` (joint positions, velocities and the
gripper width, 17 values) and ``observation.environment_state`` (the object pose, 7); ours
gets the same four keys as tokens, one per key and step (or with ``vector_tokens='step'``
one per step for all of them), over its default two history steps (ACT sees one step).
Batch 1, the same
torch threads, no gradients, eval mode; each call maps raw observations to the chunk in real
units (normalisation included) -- ``ACTPolicy.predict_action_chunk`` and
``TransformerPolicy.predict``. Rounds are interleaved (one call of each, in a shuffled order,
per round). Sizes: ACT's defaults (d 512, chunk 100; 22.8 M parameters without the VAE
encoder, which inference never runs) against ours at d 512 / chunk 100 with as many encoder
layers as brings it to the same count; and our default size against ACT shrunk to the same
count. Goal: our p50 <= 0.5 x ACT's at equal size.

Ours runs what ``predict`` runs on the CPU: the inference plan (lam_ros/policy/fast_path.py).
Two reference rows show what PyTorch's default product (F.linear) costs for the weights alone
at batch 1 on this machine: ``floor_tokens`` runs every weight matrix of our model once over
as many rows as we have observation tokens (nothing else: no attention, no norms),
``floor_gemv`` over a single row; the plan's oneDNN-packed products beat both.
"""

import argparse
import json
import os
import platform
import random
import sys
import time
from typing import Any, Callable, Dict

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

GOAL_RATIO = 0.5
STATE_DIM, ENV_DIM, ACTION_DIM = 17, 7, 8
JOINTS = tuple(f'panda_joint{i}' for i in range(1, 8)) + ('panda_finger_joint1',)
OBS_SPEC = {'joint_pos': (8,), 'joint_vel': (8,), 'gripper_width': (1,), 'object_pose': (7,)}
ACT_SIZE = {'d_model': 512, 'n_heads': 8, 'n_layers': 7, 'chunk_size': 100}
# (name, our PolicyConfig overrides, ACTConfig overrides); equal parameter counts (ours 2 %
# under ACT's at its defaults). act_default_step: ours with one token per history step for
# all vector keys (vector_tokens='step', each encoded token 4 decoder memory tokens).
PAIRS = (
    ('act_default', ACT_SIZE, {}),
    ('act_default_step', {**ACT_SIZE, 'vector_tokens': 'step', 'decoder_memory_tokens': 4}, {}),
    ('ours_default', {}, {'dim_model': 64, 'n_heads': 4, 'dim_feedforward': 256,
                          'n_encoder_layers': 1, 'chunk_size': 20, 'n_action_steps': 20}),
)


def build_act(overrides: Dict[str, Any]) -> tuple:
    """Return (ACTPolicy in eval mode, parameters without the VAE encoder, its call)."""
    import torch
    from lerobot.configs.types import FeatureType, PolicyFeature
    from lerobot.policies.act.configuration_act import ACTConfig
    from lerobot.policies.act.modeling_act import ACTPolicy
    features = {'observation.state': PolicyFeature(FeatureType.STATE, (STATE_DIM,)),
                'observation.environment_state': PolicyFeature(FeatureType.ENV, (ENV_DIM,))}
    config = ACTConfig(input_features=features, device='cpu',
                       output_features={'action': PolicyFeature(FeatureType.ACTION,
                                                                (ACTION_DIM,))},
                       **overrides)
    stats = {k: {'mean': torch.zeros(n), 'std': torch.ones(n)} for k, n in (
        ('observation.state', STATE_DIM), ('observation.environment_state', ENV_DIM),
        ('action', ACTION_DIM))}
    policy = ACTPolicy(config, dataset_stats=stats).eval()
    params = sum(p.numel() for n, p in policy.named_parameters() if 'vae_encoder' not in n)
    generator = torch.Generator().manual_seed(1)
    batch = {'observation.state': torch.randn(1, STATE_DIM, generator=generator),
             'observation.environment_state': torch.randn(1, ENV_DIM, generator=generator)}
    return policy, params, lambda: policy.predict_action_chunk(batch)


def build_ours(overrides: Dict[str, Any]) -> tuple:
    """Return (TransformerPolicy in eval mode, its parameter count, its call)."""
    import torch
    from lam_ros.policy import PolicyConfig, TransformerPolicy
    torch.manual_seed(0)
    model = TransformerPolicy(PolicyConfig(joint_names=JOINTS, obs_spec=OBS_SPEC,
                                           **overrides)).eval()
    generator = torch.Generator().manual_seed(1)
    obs = {k: torch.randn((1, model.config.history_len) + s, generator=generator)
           for k, s in OBS_SPEC.items()}
    mask = torch.ones(1, model.config.history_len, dtype=torch.bool)
    return model, model.num_parameters(), lambda: model.predict(obs, mask)


def weight_floors(model: Any) -> Dict[str, Callable[[], Any]]:
    """Return calls that multiply every weight matrix of model by T rows and by one row."""
    import torch
    from torch.nn import functional as F
    tokens = model.config.history_len * model.tokens_per_step
    weights = [m.weight for m in model.modules() if isinstance(m, torch.nn.Linear)]
    rows = {n: {w.shape[1]: torch.randn(n, w.shape[1]) for w in weights} for n in (tokens, 1)}
    return {name: (lambda x=rows[n]: [F.linear(x[w.shape[1]], w) for w in weights])
            for name, n in (('floor_tokens', tokens), ('floor_gemv', 1))}


def interleaved(calls: Dict[str, Callable[[], Any]], rounds: int, warmup: int,
                seed: int = 0) -> Dict[str, Dict[str, float]]:
    """Time each call once per round in a shuffled order; return percentiles in ms."""
    import numpy as np
    times = {name: [] for name in calls}
    order = list(calls)
    rng = random.Random(seed)
    for i in range(warmup + rounds):
        rng.shuffle(order)
        for name in order:
            start = time.perf_counter()
            calls[name]()
            if i >= warmup:
                times[name].append(time.perf_counter() - start)
    out = {}
    for name, samples in times.items():
        ms = 1000.0 * np.asarray(samples)
        out[name] = {f'p{q}_ms': float(np.percentile(ms, q)) for q in (50, 90, 99)}
        out[name]['mean_ms'] = float(ms.mean())
    return out


def main() -> int:
    """Run both pairs, print the table and write the JSON report; 0 when the goal is met."""
    parser = argparse.ArgumentParser(description=__doc__.strip().split('\n\n')[0])
    parser.add_argument('--threads', type=int, default=2, help='torch threads (default: 2)')
    parser.add_argument('--rounds', type=int, default=200, help='timed calls of each model')
    parser.add_argument('--warmup', type=int, default=20, help='untimed calls of each model')
    parser.add_argument('--json', default='bench_vs_act.json', help='result file')
    args = parser.parse_args()
    try:
        import lerobot
        import torch
    except ImportError as err:
        print(f'error: {err}; run this with the venv that has lerobot (see the module '
              'docstring: python3 -m venv /work/act_venv ...)', file=sys.stderr)
        return 2
    import lam_ros
    torch.set_num_threads(args.threads)
    report = {'threads': args.threads, 'rounds': args.rounds, 'torch': torch.__version__,
              'lerobot': getattr(lerobot, '__version__', 'unknown'),
              'lam_ros_from': os.path.dirname(lam_ros.__file__),
              'cpu': platform.processor() or platform.machine(), 'cpu_count': os.cpu_count(),
              'goal_ratio': GOAL_RATIO, 'pairs': []}
    print(f'batch 1, CPU, {args.threads} threads, {args.rounds} interleaved rounds, torch '
          f'{torch.__version__}, lerobot {report["lerobot"]}')
    print(f'{"pair":>13s} {"ours":>7s} {"ACT":>7s} {"ours p50":>9s} {"ACT p50":>8s} '
          f'{"ours p99":>9s} {"ACT p99":>8s} {"ratio":>6s}')
    met = True
    for name, ours_kw, act_kw in PAIRS:
        # Built outside inference mode (as loaded from a checkpoint), then run inside it.
        ours, ours_params, ours_call = build_ours(ours_kw)
        act, act_params, act_call = build_act(act_kw)
        with torch.inference_mode():
            results = interleaved({'ours': ours_call, 'act': act_call, **weight_floors(ours)},
                                  args.rounds, args.warmup)
        ratio = results['ours']['p50_ms'] / results['act']['p50_ms']
        met = met and ratio <= GOAL_RATIO
        report['pairs'].append({
            'pair': name, 'ours_params': ours_params, 'act_params_without_vae': act_params,
            'ours_config': ours.config.to_dict(),
            'act_config': {k: getattr(act.config, k) for k in (
                'dim_model', 'n_heads', 'dim_feedforward', 'n_encoder_layers',
                'n_decoder_layers', 'chunk_size', 'n_obs_steps')},
            'results': results, 'p50_ratio_ours_over_act': ratio,
            'meets_goal': ratio <= GOAL_RATIO})
        print(f'{name:>13s} {ours_params / 1e6:6.2f}M {act_params / 1e6:6.2f}M '
              f'{results["ours"]["p50_ms"]:9.2f} {results["act"]["p50_ms"]:8.2f} '
              f'{results["ours"]["p99_ms"]:9.2f} {results["act"]["p99_ms"]:8.2f} '
              f'{ratio:6.2f}')
        print(f'{"":>13s} our weights through F.linear alone: '
              f'{results["floor_tokens"]["p50_ms"]:.2f} ms over our '
              f'{ours.config.history_len * ours.tokens_per_step} tokens, '
              f'{results["floor_gemv"]["p50_ms"]:.2f} ms over one row')
    with open(args.json, 'w', encoding='utf-8') as f:
        json.dump(report, f, indent=2)
    print(f'goal: ours p50 <= {GOAL_RATIO} x ACT p50 at equal size: '
          f'{"met" if met else "NOT met"}\nreport: {args.json}')
    return 0 if met else 1


if __name__ == '__main__':
    sys.exit(main())
