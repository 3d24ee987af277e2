"""
Action chunks in, one joint target per control tick out, on a clock shared by two threads.

The policy runs at the policy rate (its steps are ``t0 + k / policy_rate_hz``) and hands each
chunk over with the step ``k`` of the observation it saw; the control loop asks for a target
at any time ``t`` at its own, faster rate. The target is the temporal ensemble of every chunk
covering the current step (:class:`TemporalEnsembler`), linearly interpolated towards the
next step's ensemble, so a 20 Hz policy gives a smooth 1 kHz command stream. A chunk that
arrives late still counts for the steps it covers; once no chunk covers the current step,
:meth:`target` returns None and the gate holds the last command.

Thread-safe: :meth:`add_chunk` (policy thread) and :meth:`target` (control thread) take one
short lock.
"""

from __future__ import annotations

import math
import threading
from typing import Optional

from lam_ros.control.ensembling import TemporalEnsembler
import numpy as np


class ChunkScheduler:
    """Time-indexed temporal ensembling with interpolation between policy steps."""

    def __init__(self, chunk_size: int, action_dim: int, policy_rate_hz: float,
                 decay: float = 0.01, interpolate: bool = True) -> None:
        """Blend chunks of (chunk_size, action_dim) predicted at ``policy_rate_hz``."""
        if not (policy_rate_hz > 0.0 and math.isfinite(policy_rate_hz)):
            raise ValueError(f'policy_rate_hz must be a positive number, got {policy_rate_hz}')
        self.policy_rate_hz = float(policy_rate_hz)
        self.interpolate = bool(interpolate)
        self._ensembler = TemporalEnsembler(chunk_size, action_dim, decay)
        self._lock = threading.Lock()
        self._t0_s: Optional[float] = None
        self.chunks_added = 0
        self.chunks_rejected = 0
        self.reason = ''
        """Why the last chunk was rejected ('' when it was taken)."""

    @property
    def started(self) -> bool:
        """Return True once :meth:`start` fixed the step clock."""
        return self._t0_s is not None

    def start(self, t0_s: float) -> None:
        """Forget every chunk and put policy step 0 at ``t0_s`` (an episode start)."""
        with self._lock:
            self._ensembler.reset()
            self._t0_s = float(t0_s)

    def step_at(self, t_s: float) -> int:
        """Return the policy step running at time ``t_s`` (negative before the start)."""
        if self._t0_s is None:
            raise RuntimeError('call start() before asking for steps')
        return int(math.floor((t_s - self._t0_s) * self.policy_rate_hz + 1e-9))

    def step_time(self, step: int) -> float:
        """Return the time (s) at which policy step ``step`` starts."""
        if self._t0_s is None:
            raise RuntimeError('call start() before asking for steps')
        return self._t0_s + step / self.policy_rate_hz

    def add_chunk(self, step: int, chunk: np.ndarray) -> bool:
        """
        Store a chunk predicted from the observation of ``step``; False if rejected.

        A rejected chunk (wrong shape, NaN/Inf, older than the last one taken) changes nothing;
        :attr:`reason` says why.
        """
        with self._lock:
            try:
                if self._t0_s is None:
                    raise ValueError('chunk before start()')
                if step < 0:
                    raise ValueError(f'chunk step {step} lies before the episode start')
                chunk = np.asarray(chunk, dtype=np.float64)
                ens = self._ensembler
                if chunk.shape != (ens.chunk_size, ens.action_dim):
                    raise ValueError(f'chunk has shape {chunk.shape}; expected '
                                     f'{(ens.chunk_size, ens.action_dim)}')
                if not np.all(np.isfinite(chunk)):
                    raise ValueError('chunk contains NaN or Inf')
                # The control loop may not have reached the step yet (it ticks later).
                self._ensembler.advance_to(step)
                self._ensembler.add_chunk(chunk, step)
            except ValueError as err:
                self.chunks_rejected += 1
                self.reason = str(err)
                return False
            self.chunks_added += 1
            self.reason = ''
            return True

    def target(self, t_s: float) -> Optional[np.ndarray]:
        """Return the joint target for time ``t_s`` (None when no chunk covers it)."""
        with self._lock:
            if self._t0_s is None:
                return None
            phase = (t_s - self._t0_s) * self.policy_rate_hz
            step = int(math.floor(phase + 1e-9))
            if step < self._ensembler.step:  # the clock never runs back; hold the present
                step = self._ensembler.step
            self._ensembler.advance_to(step)
            now = self._ensembler.blend(step)
            if now is None:
                return None
            if not self.interpolate:
                return now
            after = self._ensembler.blend(step + 1)
            if after is None:
                return now
            alpha = min(max(phase - step, 0.0), 1.0)
            # Absurd (finite) predictions may overflow to NaN here; the gate rejects those.
            with np.errstate(over='ignore', invalid='ignore'):
                return now + alpha * (after - now)
