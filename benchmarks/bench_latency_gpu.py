"""
Benchmark the policy's forward latency at batch 1 on a CUDA GPU: fp32, fp16, CUDA graphs.

Run on a machine with a GPU (it refuses to run without one)::

    python benchmarks/bench_latency_gpu.py --json bench_latency_gpu.json

The same sizes, observations and table as ``bench_latency.py``; the backends are ``eager``
(fp32), ``eager_fp16`` (CUDA autocast), ``compiled`` (torch.compile, fp32),
``cuda_graphs`` and ``cuda_graphs_fp16`` (torch.compile in 'reduce-overhead' mode, which
replays CUDA graphs), ``torchscript`` and ``onnx`` (onnxruntime's CUDA provider when it is
installed, else left out). Each call is numpy in -> numpy chunk out, so the host-device copies
and the synchronisation the inference node pays are included. ``max |diff|`` against fp32
eager shows what fp16 costs in accuracy (rad / m).
"""

import argparse
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench_latency import checkpoints, measure, print_table, SIZES  # noqa: E402
from lam_ros.policy.export import example_inputs, export_policy, load_backend  # noqa: E402
import torch  # noqa: E402


def main() -> int:
    """Measure every GPU variant at every size and write the JSON report."""
    parser = argparse.ArgumentParser(description=__doc__.strip().split('\n\n')[0])
    parser.add_argument('--sizes', default=','.join(SIZES), help='comma-separated (default: all)')
    parser.add_argument('--checkpoint', action='append', default=[], metavar='DIR',
                        help='also measure this checkpoint (e.g. a trained camera policy; its '
                             'exports go to DIR/export); repeatable')
    parser.add_argument('--device', default='cuda', help="CUDA device (default: 'cuda')")
    parser.add_argument('--rounds', type=int, default=500, help='timed calls per backend')
    parser.add_argument('--warmup', type=int, default=4, help='untimed rounds')
    parser.add_argument('--no-compile', action='store_true', help='skip torch.compile variants')
    parser.add_argument('--json', default='bench_latency_gpu.json', help='result file')
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print('error: no CUDA device here (torch.cuda.is_available() is False); run '
              'benchmarks/bench_latency.py for the CPU table', file=sys.stderr)
        return 2
    device = torch.device(args.device)
    report = {'device': torch.cuda.get_device_name(device), 'torch': torch.__version__,
              'cuda': torch.version.cuda, 'rounds': args.rounds, 'sizes': []}
    try:
        import onnxruntime
        onnx_cuda = 'CUDAExecutionProvider' in onnxruntime.get_available_providers()
    except ImportError:
        onnx_cuda = False
    with tempfile.TemporaryDirectory() as tmp:
        for size, path in checkpoints(tmp, args.sizes, args.checkpoint):
            formats = ('onnx', 'torchscript') if onnx_cuda else ('torchscript',)
            export_policy(path, formats=formats, check_batch=1, seeds=1)
            loaders = {
                'eager': lambda: load_backend(path, device=args.device),
                'eager_fp16': lambda: load_backend(path, device=args.device, fp16=True),
                'torchscript': lambda: load_backend(path, 'torchscript', device=args.device)}
            if onnx_cuda:
                loaders['onnx'] = lambda: load_backend(path, 'onnx', device=args.device)
            if not args.no_compile:
                loaders['compiled'] = lambda: load_backend(path, device=args.device,
                                                           compiled=True)
                loaders['cuda_graphs'] = lambda: load_backend(
                    path, device=args.device, compiled='reduce-overhead')
                loaders['cuda_graphs_fp16'] = lambda: load_backend(
                    path, device=args.device, compiled='reduce-overhead', fp16=True)
            inputs = example_inputs(load_backend(path).config, 1)
            obs = {k: v for k, v in inputs.items() if k != 'obs_mask'}
            backends = {}
            for name, loader in loaders.items():
                backends[name] = loader()
                for _ in range(3):  # compile, record the CUDA graphs
                    backends[name].predict(obs, inputs['obs_mask'])
            entry = {'size': size, 'policy_config': backends['eager'].config.to_dict(),
                     'num_parameters': backends['eager'].document['num_parameters'],
                     'results': measure(backends, args.rounds, args.warmup)}
            report['sizes'].append(entry)
            print_table(f'{size}: batch 1, {report["device"]}', [entry])
    with open(args.json, 'w', encoding='utf-8') as f:
        json.dump(report, f, indent=2)
    print(f'\nreport: {args.json}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
