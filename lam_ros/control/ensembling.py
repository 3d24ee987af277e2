"""
Temporal ensembling of action chunks (ACT, Zhao et al. 2023), numpy only.

A policy predicts a chunk of K future actions for control steps t .. t+K-1. Each call's chunk
is stored; the command for a step is the weighted mean of every stored prediction for that
step, with weight exp(-decay * i) where i = 0 is the oldest prediction (as in ACT: older
predictions weigh more, which smooths the command; decay=0 is a plain mean).

The same object serves when the policy is called every control step, every n steps, or late:
a chunk is added with the step of the observation it was computed from, predictions for steps
already gone are ignored, and steps between calls are served from the chunks still covering
them. When no prediction covers a step (the policy fell more than K steps behind) the last
command is held.
"""

from collections import deque
from typing import Deque, Optional, Tuple

import numpy as np


class TemporalEnsembler:
    """Blends overlapping action chunks into one command per control step."""

    def __init__(self, chunk_size: int, action_dim: int, decay: float = 0.01) -> None:
        """Create an empty ensembler for chunks of shape (chunk_size, action_dim)."""
        for name, value in (('chunk_size', chunk_size), ('action_dim', action_dim)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise ValueError(f'{name} must be a positive int, got {value!r}')
        if not np.isfinite(decay) or decay < 0:
            raise ValueError(f'decay must be a finite number >= 0, got {decay!r}')
        self.chunk_size = int(chunk_size)
        self.action_dim = int(action_dim)
        self.decay = float(decay)
        self.reset()

    def reset(self) -> None:
        """Forget all chunks and restart at control step 0 (call at every episode start)."""
        self._chunks: Deque[Tuple[int, np.ndarray]] = deque()
        self._step = 0
        self._last: Optional[np.ndarray] = None

    @property
    def step(self) -> int:
        """Return the control step whose command next_action() returns next."""
        return self._step

    def add_chunk(self, chunk: np.ndarray, step: Optional[int] = None) -> None:
        """
        Store a chunk (chunk_size, action_dim) predicted for steps step .. step+K-1.

        step defaults to the current step; pass the step of the observation the policy saw
        when the prediction arrives late.
        """
        chunk = np.array(chunk, dtype=np.float64)
        if chunk.shape != (self.chunk_size, self.action_dim):
            raise ValueError(f'chunk must have shape {(self.chunk_size, self.action_dim)} '
                             f'(chunk_size, action_dim), got {chunk.shape}')
        if not np.all(np.isfinite(chunk)):
            raise ValueError('chunk contains NaN or Inf; refusing to blend it into commands')
        start = self._step if step is None else int(step)
        if start > self._step:
            raise ValueError(f'chunk step {start} lies in the future (current step '
                             f'{self._step}); chunks start at the step they were observed')
        if self._chunks and start < self._chunks[-1][0]:
            raise ValueError(f'chunk step {start} is older than the last chunk added '
                             f'({self._chunks[-1][0]}); add chunks in observation order')
        self._chunks.append((start, chunk))
        self._drop_expired()

    def num_predictions(self) -> int:
        """How many stored chunks cover the current step (0 means next_action() holds)."""
        self._drop_expired()
        return sum(1 for start, _ in self._chunks if start <= self._step)

    def blend(self, step: int) -> Optional[np.ndarray]:
        """
        Return the blended prediction for ``step`` (>= the current step) without advancing.

        None when no stored chunk covers that step.
        """
        if step < self._step:
            raise ValueError(f'step {step} is already past (current step {self._step})')
        self._drop_expired()
        preds = [chunk[step - start] for start, chunk in self._chunks
                 if start <= step < start + self.chunk_size]
        if not preds:
            return None
        weights = np.exp(-self.decay * np.arange(len(preds)))
        return weights @ np.stack(preds) / weights.sum()

    def advance_to(self, step: int) -> None:
        """Move the current step forward to ``step`` (never back); expired chunks are dropped."""
        if step > self._step:
            blended = self.blend(step - 1)
            if blended is not None:
                self._last = blended
            self._step = int(step)
            self._drop_expired()

    def next_action(self) -> np.ndarray:
        """Return the blended command for the current step and advance to the next step."""
        action = self.blend(self._step)
        if action is None and self._last is not None:
            action = self._last
        elif action is None:
            raise RuntimeError('no action yet: add_chunk() must be called before the first '
                               'next_action() after a reset')
        self._last = action
        self._step += 1
        return action.copy()

    def _drop_expired(self) -> None:
        # Chunks are kept in start order, so the expired ones are always at the front.
        while self._chunks and self._chunks[0][0] + self.chunk_size <= self._step:
            self._chunks.popleft()
