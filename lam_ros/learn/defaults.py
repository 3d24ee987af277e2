"""Policy settings that ``lam-ros train`` and the benchmark start from.

They override a few ``PolicyConfig`` defaults with values tuned on the lift task with 50
noisy scripted demonstrations (benchmarks/bench_bc.py): a small model trains in minutes on
two CPU cores and still reaches the success bar.
"""

from typing import Any, Dict

POLICY_DEFAULTS: Dict[str, Any] = {
    'head': 'regression',
    'history_len': 2,
    'chunk_size': 20,
    'd_model': 64,
    'n_heads': 4,
    'n_layers': 2,
    'dropout': 0.1,
}
"""PolicyConfig fields (besides joint_names, obs_spec, control_rate_hz) used for training."""
