"""
Self-imitation: the successful rollout episodes join the demonstrations of the BC term.

Every control step of every env is recorded (the policy's observation and the command sent,
the temporal ensemble of the sampled chunks, before the gate); when an episode ends with
``is_success``, it is kept, up to ``capacity`` episodes (the oldest dropped first). A success on
a replayed scene the policy had failed (``hard``, see replay.py) is kept apart, up to another
``capacity``: the successes on easy scenes, which soon make up most of them, never push out
the few on the scenes the policy still fails, which are the ones worth imitating. Behaviour
cloning on demonstrations plus kept successes is success-filtered regression on the policy's
own experience with a binary reward: the sparse-reward, chunk-level signal that PPO's
160-dimensional ratio carries weakly, given directly to the chunk head.
"""

from collections import deque
from typing import Any, Deque, Dict, List, Mapping, Optional, Tuple

from lam_ros.data.dataset.windows import Windows
from lam_ros.learn.rl.rollout import policy_array
import numpy as np

Episode = Tuple[Dict[str, np.ndarray], np.ndarray]


class SuccessArchive:
    """Ongoing episodes of num_envs envs, the successful ones kept, demos and all as Windows."""

    def __init__(self, num_envs: int, keys: List[str], capacity: int, history_len: int,
                 chunk_size: int, demos: Optional[List[Episode]] = None) -> None:
        """Prepare empty episodes; demos (obs dict, actions) are always part of windows()."""
        self.keys = list(keys)
        self.history_len, self.chunk_size = history_len, chunk_size
        self.demos: List[Episode] = list(demos or [])
        self.kept: Deque[Episode] = deque(maxlen=capacity)
        self.hard: Deque[Episode] = deque(maxlen=capacity)
        self.added = 0
        self._obs: List[List[Dict[str, np.ndarray]]] = [[] for _ in range(num_envs)]
        self._actions: List[List[np.ndarray]] = [[] for _ in range(num_envs)]
        self._windows: Optional[Windows] = None

    def record(self, obs: Mapping[str, np.ndarray], commands: np.ndarray,
               active: np.ndarray) -> None:
        """Append this control step (obs before it, command sent) of every active env."""
        for i in np.flatnonzero(active):
            self._obs[i].append({k: policy_array(obs[k][i]) for k in self.keys})
            self._actions[i].append(np.asarray(commands[i], dtype=np.float32))

    def end(self, index: int, success: bool, hard: bool = False) -> None:
        """Close env index's episode: keep it if it succeeded, then start an empty one."""
        if success and self._actions[index]:
            obs = {k: np.stack([o[k] for o in self._obs[index]]) for k in self.keys}
            (self.hard if hard else self.kept).append((obs, np.stack(self._actions[index])))
            self.added += 1
            self._windows = None
        self._obs[index], self._actions[index] = [], []

    def windows(self) -> Optional[Windows]:
        """Return the demos and the kept successes as training windows; None if empty."""
        episodes = self.demos + list(self.hard) + list(self.kept)
        if not episodes:
            return None
        if self._windows is None:
            self._windows = Windows([e[0] for e in episodes], [e[1] for e in episodes],
                                    self.history_len, self.chunk_size)
        return self._windows


def demo_episodes(demos: Any, keys: List[str]) -> List[Episode]:
    """Return a Dataset's episodes as (obs dict, actions) pairs for SuccessArchive."""
    return [({k: policy_array(ep.obs[k]) for k in keys},
             np.asarray(ep.action, dtype=np.float32)) for ep in demos.episodes]
