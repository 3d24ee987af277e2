"""
Running the chunked policy in N envs at once, exactly as PolicyRunner runs it on the robot.

Chunk handling (the choice RL fine-tuning makes): chunk-level macro-actions on PolicyRunner's
schedule. The policy is queried every ``query_every`` (k) control steps, as
``PolicyRunner(model, query_every=k)`` and the inference node do; the RL *action* is the whole
sampled chunk (K future joint targets, log-probability over K x A); the command of every
control step is the temporal ensemble of the chunks covering it (the same decay as on the
robot), then the command gate. One RL transition spans the k control steps until the next
query (rewards summed with discount, gamma**k between transitions). Acting with the mean chunk
gives exactly PolicyRunner's command stream, which evaluation uses; deploy with the same
``query_every`` (recorded in the checkpoint's metadata as ``rl.query_every``).
"""

from collections import deque
from typing import Any, Deque, Dict, List, Mapping, Optional, Tuple

from lam_ros.control.ensembling import TemporalEnsembler
from lam_ros.policy import TransformerPolicy
import numpy as np
import torch


class BatchRunner:
    """Observation history and temporal ensembling for num_envs envs (PolicyRunner, batched)."""

    def __init__(self, policy: TransformerPolicy, num_envs: int, ensemble_decay: float) -> None:
        """Prepare per-env history buffers and ensemblers."""
        self.config = policy.config
        self.started = np.zeros(num_envs, dtype=bool)
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
        self.started[index] = False

    def due(self, query_every: int) -> np.ndarray:
        """Return which envs query the policy on this step (PolicyRunner's schedule)."""
        return np.array([e.step % query_every == 0 for e in self.ensemblers])

    def observe(self, obs: Mapping[str, np.ndarray]
                ) -> Tuple[Dict[str, np.ndarray], np.ndarray]:
        """Append this step's batched obs; return the policy inputs (N, H, ...) and mask (N, H)."""
        h = self.config.history_len
        stacked: Dict[str, List[np.ndarray]] = {k: [] for k in self.config.obs_spec}
        mask = np.zeros((self.num_envs, h), dtype=bool)
        for i in range(self.num_envs):
            history = self.history[i]
            history.append({k: policy_array(obs[k][i]) for k in self.config.obs_spec})
            pad = h - len(history)
            # Padded steps repeat the first observation and are masked, as in training.
            steps = [history[0]] * pad + list(history)
            mask[i, pad:] = True
            for key in stacked:
                stacked[key].append(np.stack([s[key] for s in steps]))
        return {k: np.stack(v) for k, v in stacked.items()}, mask

    def commands(self, chunks: Optional[np.ndarray], add: np.ndarray,
                 hold: np.ndarray) -> np.ndarray:
        """
        Return one command per env for this control step.

        chunks (N, K, A) in real units are blended in where add is True. An env that has had
        no chunk since its reset commands hold (its measured joint positions).
        """
        out = np.array(hold, dtype=np.float64)
        for i, ensembler in enumerate(self.ensemblers):
            if add[i]:
                ensembler.add_chunk(chunks[i])
                self.started[i] = True
            if self.started[i]:
                out[i] = ensembler.next_action()
        return out


def policy_array(value: Any) -> np.ndarray:
    """Return an observation as the policy takes it: uint8 images stay uint8, else float32."""
    value = np.asarray(value)
    return value if value.dtype == np.uint8 else value.astype(np.float32)


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
                    ensemble_decay: float, query_every: int = 1) -> Dict[str, float]:
    """
    Roll the policy's mean chunks out for seeded episodes seed .. seed + episodes - 1.

    Every env follows PolicyRunner(query_every) from its own episode start. An env whose
    episode ends is reset onto the next unplayed seed, so the episodes played do not depend on
    num_envs.
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
        due = runner.due(query_every)
        chunks = policy.predict(*inputs).cpu().double().numpy() if due.any() else None
        commands = runner.commands(chunks, due, obs['joint_pos'])
        obs, reward, terminated, truncated, info = envs.step(commands)
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
