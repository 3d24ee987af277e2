"""
Normalisation statistics: one ``compute_stats`` for datasets and policies alike (numpy only).

Statistics are taken over every axis but the last, so a vector key (N, D) gets per-element
values and an image key (N, H, W, C) per-channel ones, in stored units (0-255 rgb, metres
depth). Arrays may come in several parts (one per episode); the moments are merged exactly
(Chan et al.), so the result does not depend on how the data is split.
"""

from typing import Any, Dict, Iterable, List, Mapping, Optional, Union

import numpy as np

Stats = Dict[str, Dict[str, np.ndarray]]
"""Key -> {'mean', 'std', 'min', 'max'} float32 arrays."""

Parts = Union[Mapping[str, np.ndarray], Iterable[Mapping[str, np.ndarray]]]


def _merge(acc: Optional[List[Any]], values: np.ndarray) -> List[Any]:
    """Fold (count, mean, M2, min, max) of ``values`` (N, D) into ``acc``."""
    n = values.shape[0]
    mean = values.mean(axis=0)
    m2 = ((values - mean) ** 2).sum(axis=0)
    vmin, vmax = values.min(axis=0), values.max(axis=0)
    if acc is None:
        return [n, mean, m2, vmin, vmax]
    n_a, mean_a, m2_a, min_a, max_a = acc
    total = n_a + n
    delta = mean - mean_a
    return [total, mean_a + delta * n / total, m2_a + m2 + delta ** 2 * n_a * n / total,
            np.minimum(min_a, vmin), np.maximum(max_a, vmax)]


def compute_stats(parts: Parts, std_floor: float = 0.0) -> Stats:
    """
    Return mean, std (population, at least ``std_floor``), min and max of every key.

    ``parts`` is one mapping key -> (N, ..., D) array, or an iterable of such mappings (e.g.
    one per episode) whose arrays are pooled. Empty arrays and NaN/Inf raise ValueError.
    """
    if isinstance(parts, Mapping):
        parts = [parts]
    acc: Dict[str, Optional[List[Any]]] = {}
    scalar = set()  # keys given as (N,) arrays: their statistics are scalars
    for part in parts:
        for key, value in part.items():
            array = np.asarray(value, dtype=np.float64)
            if array.ndim < 1 or array.shape[0] == 0:
                raise ValueError(f'compute_stats: {key!r} needs an (N, ...) array with N > 0, '
                                 f'got shape {array.shape}')
            if not np.all(np.isfinite(array)):
                raise ValueError(f'compute_stats: {key!r} contains NaN or Inf')
            if array.ndim == 1:
                scalar.add(key)
            flat = array.reshape(-1, array.shape[-1]) if array.ndim > 1 else array[:, None]
            acc[key] = _merge(acc.get(key), flat)
    stats: Stats = {}
    for key, (count, mean, m2, vmin, vmax) in acc.items():
        std = np.sqrt(m2 / max(count, 1))
        values = {'mean': mean, 'std': np.maximum(std, std_floor), 'min': vmin, 'max': vmax}
        stats[key] = {name: (v[0] if key in scalar else v).astype(np.float32)
                      for name, v in values.items()}
    return stats
