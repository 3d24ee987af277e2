"""
Training windows over aligned episodes: an observation history and an action chunk per step.

Window ``(e, t)`` holds observations ``t - H + 1 .. t`` and actions ``t .. t + K - 1`` of
episode ``e``. Steps outside the episode repeat its first observation / last action and are
marked False in ``obs_mask`` / ``action_mask``, so a loss can ignore them.
"""

from typing import Any, Dict, List, Sequence

import numpy as np


class Windows:
    """Every step of every episode as a window; usable as a map-style dataset."""

    def __init__(self, obs: Sequence[Dict[str, np.ndarray]], actions: Sequence[np.ndarray],
                 history_len: int, chunk_size: int) -> None:
        """Index ``obs`` / ``actions`` (one entry per episode) for windows of H and K steps."""
        for name, value in (('history_len', history_len), ('chunk_size', chunk_size)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f'{name} must be a positive integer, got {value!r}')
        if len(obs) != len(actions):
            raise ValueError(f'{len(obs)} observation episodes for {len(actions)} action '
                             'episodes; expected one of each per episode')
        self.history_len = int(history_len)
        self.chunk_size = int(chunk_size)
        lengths = np.array([len(a) for a in actions], dtype=np.int64)
        self._starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        self._lengths = lengths
        keys = list(obs[0]) if len(obs) else []
        self._obs: Dict[str, np.ndarray] = {
            k: np.concatenate([o[k] for o in obs]) for k in keys}
        self._action = np.concatenate(actions) if len(actions) else np.zeros((0, 0), np.float32)
        self.indices = np.stack([np.repeat(np.arange(len(lengths)), lengths),
                                 np.concatenate([np.arange(n) for n in lengths])
                                 if len(lengths) else np.zeros(0, np.int64)],
                                axis=1).astype(np.int64)
        """(N, 2) array of ``(episode, step)``, one row per window."""

    def __len__(self) -> int:
        """Return the number of windows (total steps)."""
        return int(self.indices.shape[0])

    def __getitem__(self, index: int) -> Dict[str, Any]:
        """Return window ``index`` (see :meth:`sample`)."""
        return self.sample(index)

    def sample(self, index: int) -> Dict[str, Any]:
        """
        Return one window as a dict of arrays.

        Keys: ``obs`` {key: (H, ...)}, ``obs_mask`` (H,), ``action`` (K, A), ``action_mask`` (K,).
        """
        if not -len(self) <= int(index) < len(self):
            raise IndexError(f'window {index} out of range for {len(self)} windows')
        batch = self.batch([int(index) % len(self)])
        return {'obs': {k: v[0] for k, v in batch['obs'].items()},
                'obs_mask': batch['obs_mask'][0], 'action': batch['action'][0],
                'action_mask': batch['action_mask'][0]}

    def batch(self, indices: Sequence[int]) -> Dict[str, Any]:
        """Return windows for many indices at once, each array with a leading batch axis."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise IndexError(f'window indices must be in [0, {len(self)}), got '
                             f'{idx.min()}..{idx.max()}')
        episode, step = self.indices[idx, 0], self.indices[idx, 1]
        start, length = self._starts[episode], self._lengths[episode]
        hist = step[:, None] + np.arange(-self.history_len + 1, 1)[None, :]
        chunk = step[:, None] + np.arange(self.chunk_size)[None, :]
        obs_mask = hist >= 0
        action_mask = chunk < length[:, None]
        obs_rows = start[:, None] + np.clip(hist, 0, None)
        act_rows = start[:, None] + np.minimum(chunk, length[:, None] - 1)
        return {'obs': {k: v[obs_rows] for k, v in self._obs.items()}, 'obs_mask': obs_mask,
                'action': self._action[act_rows], 'action_mask': action_mask}

    def episode_of(self, index: int) -> List[int]:
        """Return ``[episode, step]`` of window ``index``."""
        return [int(v) for v in self.indices[index]]
