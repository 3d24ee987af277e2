"""
Running the chunked policy in N envs at once, exactly as PolicyRunner runs it on the robot.

Chunk handling (the choice RL fine-tuning makes): the policy is queried on every control
step, as PolicyRunner does by default. The RL *action* at step t is the whole sampled chunk
(K future joint targets); the command sent at step t is the temporal ensemble of every chunk
still covering t (TemporalEnsembler, the same decay as on the robot), then the command gate.
The ensembler's stored chunks are part of the environment's state from PPO's point of view;
the log-probability of an action is that of the full chunk. Acting with the mean instead of
a sample gives exactly PolicyRunner's commands, which evaluation uses.
"""

from collections import deque
from typing import Any, Deque, Dict, List, Mapping, Tuple

from lam_ros.control.ensembling import TemporalEnsembler
from lam_ros.policy import TransformerPolicy
import numpy as np
import torch


class BatchRunner:
    """Observation history and temporal ensembling for num_envs envs (PolicyRunner, batched)."""

    def __init__(self, policy: TransformerPolicy, num_envs: int, ensemble_decay: float) -> None:
        """Prepare per-env history buffers and ensemblers."""
        self.config = policy.config
        self.policy = policy
        self.num_envs = num_envs
        self.ensemblers = [TemporalEnsembler(self.config.chunk_size, self.config.action_dim,
                                             ensemble_decay) for _ in range(num_envs)]
        self.history: List[Deque[Dict[str, np.ndarray]]] = [
            deque(maxlen=self.config.history_len) for _ in range(num_envs)]

    def reset(self, index: int) -> None:
        """Start a new episode in env index."""
        self.history[index].clear()
        self.ensemblers[index].reset()

    def observe(self, obs: Mapping[str, np.ndarray]
                ) -> Tuple[Dict[str, np.ndarray], np.ndarray]:
        """Append this step's batched obs; return the policy inputs (N, H, ...) and mask (N, H)."""
        h = self.config.history_len
        stacked: Dict[str, List[np.ndarray]] = {k: [] for k in self.config.obs_spec}
        mask = np.zeros((self.num_envs, h), dtype=bool)
        for i in range(self.num_envs):
            history = self.history[i]
            history.append({k: np.asarray(obs[k][i], dtype=np.float32)
                            for k in self.config.obs_spec})
            pad = h - len(history)
            # Padded steps repeat the first observation and are masked, as in training.
            steps = [history[0]] * pad + list(history)
            mask[i, pad:] = True
            for key in stacked:
                stacked[key].append(np.stack([s[key] for s in steps]))
        return {k: np.stack(v) for k, v in stacked.items()}, mask

    def commands(self, chunks: np.ndarray) -> np.ndarray:
        """Blend each env's new chunk (N, K, A, real units) in; return one command per env."""
        out = np.empty((self.num_envs, self.config.action_dim))
        for i, ensembler in enumerate(self.ensemblers):
            ensembler.add_chunk(chunks[i])
            out[i] = ensembler.next_action()
        return out


def to_torch(obs: Mapping[str, np.ndarray], mask: np.ndarray,
             device: torch.device) -> Tuple[Dict[str, torch.Tensor], torch.Tensor]:
    """Numpy policy inputs -> tensors on device."""
    return ({k: torch.from_numpy(v).to(device) for k, v in obs.items()},
            torch.from_numpy(mask).to(device))


def step_success(info: Dict[str, Any], done: np.ndarray) -> np.ndarray:
    """info['is_success'] of each env's step (from final_info where the env was reset)."""
    out = np.zeros(len(done))
    now = info.get('is_success')
    if now is not None:
        out[:] = np.asarray(now, dtype=float) * np.asarray(info.get('_is_success', True))
    final = info.get('final_info') or {}
    if done.any() and 'is_success' in final:
        out[done] = np.asarray(final['is_success'], dtype=float)[done]
    return out


@torch.no_grad()
def evaluate_vector(policy: TransformerPolicy, envs: Any, episodes: int, seed: int,
                    ensemble_decay: float) -> Dict[str, float]:
    """
    Roll the policy's mean chunks out for seeded episodes seed .. seed + episodes - 1.

    envs must be made with autoreset='disabled': an env whose episode ends is reset onto the
    next unplayed seed, so the episodes played do not depend on num_envs.
    """
    device = next(policy.parameters()).device
    n = envs.num_envs
    runner = BatchRunner(policy, n, ensemble_decay)
    seeds = np.arange(n) + seed  # the seed each env plays; >= seed + episodes: idle
    obs, _ = envs.reset(seed=[int(s) for s in seeds])
    next_seed = seed + n
    returns, lengths = np.zeros(n), np.zeros(n, dtype=np.int64)
    results: Dict[int, Tuple[bool, float, int]] = {}
    while len(results) < episodes:
        inputs = to_torch(*runner.observe(obs), device)
        chunks = policy.predict(*inputs).cpu().double().numpy()
        obs, reward, terminated, truncated, info = envs.step(runner.commands(chunks))
        returns += reward
        lengths += 1
        done = np.logical_or(terminated, truncated)
        success = step_success(info, done)
        for i in np.flatnonzero(done):
            if seeds[i] < seed + episodes and int(seeds[i]) not in results:
                results[int(seeds[i])] = (bool(success[i]), float(returns[i]),
                                          int(lengths[i]))
            seeds[i], next_seed = next_seed, next_seed + 1
            runner.reset(i)
            returns[i], lengths[i] = 0.0, 0
        if done.any():
            obs, _ = envs.reset(seed=[int(s) for s in seeds], options={'reset_mask': done})
    ok = [results[s][0] for s in sorted(results)]
    return {'success_rate': float(np.mean(ok)), 'episodes': len(ok),
            'mean_return': float(np.mean([r[1] for r in results.values()])),
            'mean_length': float(np.mean([r[2] for r in results.values()]))}
