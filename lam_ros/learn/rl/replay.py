"""
Which scene each rollout episode plays: fresh seeds, and again the scenes the policy failed.

A weak policy fails on a region of the scene distribution (for lift from 10 demos: cubes far
from any demonstration's yaw or position). Fresh scenes visit that region as often as the
test does, and the policy's exploration rarely solves a scene there at the first attempt, so
self-imitation keeps successes almost only where the policy already succeeds. Replaying the
scenes it failed (``replay_fraction`` of the episode starts, each failed scene up to
``replay_tries`` more times, newest failures first) spends the exploration where the
successes are missing; a per-episode action offset (``episode_noise_std``) makes the replayed
attempts differ from each other as whole trajectories, not only step by step.

Seeds are the env's own ``reset(seed=...)``: any env that draws its scene from that seed (the
gymnasium convention) replays the same scene.
"""

from collections import deque
from typing import Deque, Dict, Optional, Tuple

import numpy as np


class SceneReplay:
    """Scene seeds of the episodes of num_envs envs, with failed scenes queued for replay."""

    def __init__(self, first_seed: int, fraction: float, tries: int, capacity: int,
                 rng: np.random.Generator) -> None:
        """Count fresh seeds up from first_seed; replay a fraction of starts from the queue."""
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f'fraction must be in [0, 1], got {fraction}')
        self.next_fresh = int(first_seed)
        self.fraction, self.tries = float(fraction), int(tries)
        self.queue: Deque[Tuple[int, int]] = deque(maxlen=max(1, int(capacity)))
        self.rng = rng
        self.playing: Dict[int, Tuple[int, int, bool]] = {}
        self.replays = self.replay_successes = 0

    def start(self, index: int) -> int:
        """Return the seed env index plays next (a queued failure or a fresh scene)."""
        if self.queue and self.fraction > 0 and self.rng.random() < self.fraction:
            seed, left = self.queue.pop()  # the newest failure first
            self.playing[index] = (seed, left - 1, True)
            self.replays += 1
        else:
            seed = self.next_fresh
            self.next_fresh += 1
            self.playing[index] = (seed, self.tries, False)
        return seed

    def replayed(self, index: int) -> bool:
        """Return whether env index's current episode replays a failed scene."""
        return index in self.playing and self.playing[index][2]

    def end(self, index: int, success: Optional[bool]) -> None:
        """
        Close env index's episode; a failure is queued while it has tries left.

        success None: the episode was cut off (an evaluation reset the envs); nothing is
        queued.
        """
        if index not in self.playing:
            return
        seed, left, replayed = self.playing.pop(index)
        if replayed and success:
            self.replay_successes += 1
        if success is False and left > 0 and self.fraction > 0:
            self.queue.append((seed, left))
