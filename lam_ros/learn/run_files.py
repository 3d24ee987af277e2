"""
What a training run leaves on disk besides checkpoints: metrics, curves and resume state.

``metrics.csv`` has one row per logging interval (validation columns filled on evaluation
steps); ``curves.png`` plots it; TensorBoard event files are written too when the
``tensorboard`` package happens to be installed. The optimizer state that lets a run resume
lives in ``training_state.safetensors`` next to the weights of the ``last`` checkpoint.
"""

import csv
import json
import math
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

from lam_ros.description.files import file_mode
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
import torch

METRICS_FILE = 'metrics.csv'
PLOT_FILE = 'curves.png'
STATE_FILE = 'training_state.safetensors'
COLUMNS = ('step', 'lr', 'loss', 'l1', 'mse', 'grad_norm', 'val_loss', 'val_l1', 'val_mse',
           'elapsed_s')


class MetricsLog:
    """Appends rows to metrics.csv (keeping rows up to a resumed count) and to TensorBoard."""

    def __init__(self, out_dir: str, resume_step: int = 0, columns: Sequence[str] = COLUMNS,
                 count_key: str = 'step', tb_prefix: str = '') -> None:
        """
        Open out_dir/metrics.csv; rows after resume_step (lost work) are dropped.

        ``count_key`` is the column that counts progress (BC: step, RL: env_steps); TensorBoard
        scalars are named ``tb_prefix + column``.
        """
        self.path = os.path.join(out_dir, METRICS_FILE)
        self.columns, self.count_key, self.tb_prefix = tuple(columns), count_key, tb_prefix
        rows = read_metrics(self.path, count_key) if resume_step > 0 else []
        rows = [r for r in rows if r[count_key] <= resume_step]
        with open(self.path, 'w', newline='', encoding='utf-8') as stream:
            writer = csv.DictWriter(stream, self.columns)
            writer.writeheader()
            for row in rows:
                writer.writerow({k: _fmt(row.get(k)) for k in self.columns})
        self._tb = _tensorboard_writer(os.path.join(out_dir, 'tensorboard'))

    def write(self, row: Dict[str, Any]) -> None:
        """Append one row (missing columns stay empty)."""
        with open(self.path, 'a', newline='', encoding='utf-8') as stream:
            csv.DictWriter(stream, self.columns).writerow(
                {k: _fmt(row.get(k)) for k in self.columns})
        if self._tb is not None:
            for key, value in row.items():
                if key != self.count_key and isinstance(value, (int, float)):
                    self._tb.add_scalar(self.tb_prefix + key, value, row[self.count_key])

    def close(self) -> None:
        """Flush TensorBoard, if used."""
        if self._tb is not None:
            self._tb.close()


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ''
    if isinstance(value, float):
        return f'{value:.6g}'
    return str(value)


def _tensorboard_writer(log_dir: str) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional; metrics.csv always exists
        return None
    return SummaryWriter(log_dir)


def read_metrics(path: str, count_key: str = 'step') -> List[Dict[str, Optional[float]]]:
    """Read a metrics.csv into dicts of floats (None for empty cells; ``count_key`` as int)."""
    if not os.path.isfile(path):
        return []
    rows = []
    with open(path, newline='', encoding='utf-8') as stream:
        for raw in csv.DictReader(stream):
            row: Dict[str, Any] = {k: (float(v) if v not in ('', None) else None)
                                   for k, v in raw.items()}
            row[count_key] = int(row[count_key])
            rows.append(row)
    return rows


def plot_curves(metrics_path: str, png_path: str, title: str = '') -> Optional[str]:
    """Plot training and validation loss against step into png_path; return it (None if empty)."""
    rows = read_metrics(metrics_path)
    if not rows:
        return None
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib import pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4))
    # With an L1 regression loss, val L1 is the val loss: draw it only when it differs.
    l1_differs = any(r.get('val_l1') != r.get('val_loss') for r in rows)
    for key, label in (('loss', 'train loss'), ('val_loss', 'val loss'), ('val_l1', 'val L1')):
        points = [(r['step'], r[key]) for r in rows if r.get(key) is not None]
        if points and (key != 'val_l1' or l1_differs):
            ax.plot(*zip(*points), label=label, marker='.' if key != 'loss' else None)
    ax.set_xlabel('training step')
    ax.set_ylabel('loss (normalised actions)')
    if all(r[k] > 0 for r in rows for k in ('loss', 'val_loss', 'val_l1')
           if r.get(k) is not None):
        ax.set_yscale('log')
    ax.grid(True, alpha=0.3)
    ax.legend()
    if title:
        ax.set_title(title)
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)
    plt.close(fig)
    return png_path


def save_training_state(directory: str, optimizer: torch.optim.Optimizer,
                        info: Dict[str, Any]) -> str:
    """Write the optimizer state and JSON-safe info (step, ...) atomically into directory."""
    state = optimizer.state_dict()
    tensors = {}
    for index, entry in state['state'].items():
        for name, value in entry.items():
            value = value if isinstance(value, torch.Tensor) else torch.tensor(value)
            tensors[f'state/{index}/{name}'] = value.detach().to('cpu').contiguous()
    meta = {'param_groups': json.dumps(state['param_groups']), 'info': json.dumps(info)}
    path = os.path.join(directory, STATE_FILE)
    tmp = path + '.tmp'
    save_file(tensors, tmp, metadata=meta)
    os.chmod(tmp, file_mode())  # safetensors creates it private (0600)
    os.replace(tmp, path)
    return path


def load_training_state(directory: str) -> Optional[Tuple[Dict[str, Any], Dict[str, Any]]]:
    """Return (optimizer state_dict, info) saved by save_training_state, or None if absent."""
    path = os.path.join(directory, STATE_FILE)
    if not os.path.isfile(path):
        return None
    try:
        from safetensors import safe_open
        with safe_open(path, framework='pt') as handle:
            meta = handle.metadata() or {}
        tensors = load_file(path)
        groups = json.loads(meta['param_groups'])
        info = json.loads(meta['info'])
    except (SafetensorError, OSError, KeyError, ValueError):
        return None  # damaged: the caller restarts the optimizer from the weights
    state: Dict[int, Dict[str, torch.Tensor]] = {}
    for name, value in tensors.items():
        _, index, key = name.split('/', 2)
        state.setdefault(int(index), {})[key] = value
    for group in groups:
        if 'betas' in group:
            group['betas'] = tuple(group['betas'])
    return {'state': state, 'param_groups': groups}, info
