"""
Per-key normalisation of observations and actions, kept as buffers inside the model.

Vector observations and actions are standardised with mean/std fitted on the training data;
images are scaled to [0, 1] and then standardised with fixed constants, so that the statistics
travel with the weights and a checkpoint needs nothing else to run.
"""

from typing import Dict, Mapping, Sequence, Tuple

from lam_ros.data.dataset.stats import compute_stats
from lam_ros.policy.config import image_kind, IMAGE_KINDS, PolicyConfig
import numpy as np
import torch
from torch import nn

__all__ = ['compute_stats', 'MIN_STD', 'Normalizer']  # compute_stats: the one in data.dataset

# A dimension that never varies in the data (e.g. a fixed goal orientation) keeps std 1 rather
# than a tiny std that would blow small deviations at run time up into huge inputs.
MIN_STD = 1e-4
# Fixed per-channel statistics for images already scaled to [0, 1].
_IMAGE_MEAN = {'rgb': (0.485, 0.456, 0.406), 'depth': (0.5,)}
_IMAGE_STD = {'rgb': (0.229, 0.224, 0.225), 'depth': (0.25,)}
Stats = Mapping[str, Mapping[str, np.ndarray]]


class _KeyStats(nn.Module):
    """Mean and std buffers of one key (saved in the state dict)."""

    def __init__(self, shape: tuple) -> None:
        super().__init__()
        self.register_buffer('mean', torch.zeros(shape))
        self.register_buffer('std', torch.ones(shape))


class Normalizer(nn.Module):
    """Maps observations and actions between real units and the network's normalised units."""

    def __init__(self, config: PolicyConfig) -> None:
        """Create identity statistics for every key of config; call fit() before training."""
        super().__init__()
        self.config = config
        self.stats = nn.ModuleDict()
        for key in config.lowdim_keys:
            self.stats[key] = _KeyStats(config.obs_spec[key])
        self.stats['action'] = _KeyStats((config.action_dim,))
        for key in config.image_keys:
            kind = image_kind(key)
            self.stats[key] = _KeyStats((IMAGE_KINDS[kind],))
            self.stats[key].mean.copy_(torch.tensor(_IMAGE_MEAN[kind]))
            self.stats[key].std.copy_(torch.tensor(_IMAGE_STD[kind]))
        self.register_buffer('fitted', torch.tensor(False))

    @property
    def is_fitted(self) -> bool:
        """Whether fit() has set the statistics (False means identity for vectors)."""
        return bool(self.fitted)

    @property
    def fitted_keys(self) -> tuple:
        """Keys whose statistics come from data: the vector observations and 'action'."""
        return self.config.lowdim_keys + ('action',)

    def fit(self, stats: Stats) -> None:
        """
        Set mean/std of every vector key and 'action' from numpy arrays; extras are ignored.

        Image keys keep their fixed statistics, so stats for them are not needed.
        """
        missing = [k for k in self.fitted_keys if k not in stats]
        if missing:
            raise ValueError(f'Normalizer.fit: stats lack keys {missing}; need mean and std '
                             f'for {list(self.fitted_keys)} (see compute_stats)')
        for key in self.fitted_keys:
            buf = self.stats[key]
            values = {}
            for name in ('mean', 'std'):
                if name not in stats[key]:
                    raise ValueError(f'Normalizer.fit: stats[{key!r}] has no {name!r}')
                value = np.asarray(stats[key][name], dtype=np.float32)
                if value.shape != tuple(buf.mean.shape):
                    raise ValueError(
                        f'Normalizer.fit: stats[{key!r}][{name!r}] has shape {value.shape}, '
                        f'expected {tuple(buf.mean.shape)}')
                if not np.all(np.isfinite(value)):
                    raise ValueError(f'Normalizer.fit: stats[{key!r}][{name!r}] is not finite')
                values[name] = value
            std = np.where(values['std'] < MIN_STD, 1.0, values['std']).astype(np.float32)
            buf.mean.copy_(torch.from_numpy(values['mean']))
            buf.std.copy_(torch.from_numpy(std))
        self.fitted.fill_(True)

    def state_stats(self) -> Dict[str, Dict[str, list]]:
        """Return the statistics as JSON-safe lists (for human-readable checkpoint configs)."""
        return {key: {'mean': buf.mean.flatten().tolist(), 'std': buf.std.flatten().tolist()}
                for key, buf in self.stats.items()}

    def normalize(self, key: str, x: torch.Tensor) -> torch.Tensor:
        """Real units -> normalised; images (..., H, W, C) become float in the same layout."""
        buf = self.stats[key]
        kind = image_kind(key)
        if kind == 'rgb':
            if x.dtype != torch.uint8:
                raise ValueError(f'{key!r} must be a uint8 tensor (0..255), got {x.dtype}')
            x = x.float() / 255.0
        elif kind == 'depth':
            x = x.float().clamp(0.0, self.config.depth_max_m) / self.config.depth_max_m
        return (x.float() - buf.mean) / buf.std

    def normalize_vectors(self, keys: Sequence[str],
                          obs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """
        Concatenate vector keys along the last dimension, normalised (as normalize per key).

        One normalisation over all keys: at batch 1 each op costs more than its arithmetic.
        """
        mean, std = self.vector_stats(keys)
        return (torch.cat([obs[k].float() for k in keys], dim=-1) - mean) / std

    def vector_stats(self, keys: Sequence[str]) -> Tuple[torch.Tensor, torch.Tensor]:
        """Return (mean, std) of vector keys, concatenated in the order of keys."""
        return (torch.cat([self.stats[k].mean for k in keys]),
                torch.cat([self.stats[k].std for k in keys]))

    def unnormalize(self, key: str, x: torch.Tensor) -> torch.Tensor:
        """Normalised -> real units for vector keys and 'action' (the inverse of normalize)."""
        if image_kind(key) is not None:
            raise ValueError(f'unnormalize is defined for vectors and actions, not {key!r}')
        buf = self.stats[key]
        return x * buf.std + buf.mean
