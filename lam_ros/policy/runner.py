"""
Turn a stream of observations into one joint command per control step, as on the robot.

``PolicyRunner`` is the only place where a trained policy meets live data: the PyBullet
evaluation and the inference node both feed it one observation dict per control step and
send the command it returns. It keeps the observation history the policy was trained on
(steps before the episode start are masked out, exactly like the training windows), queries
the policy every ``query_every`` steps and blends the overlapping action chunks with ACT's
temporal ensembling, so the command stream stays smooth between policy calls.
"""

from collections import deque
from typing import Deque, Dict, Mapping, Optional

from lam_ros.control.ensembling import TemporalEnsembler
from lam_ros.policy.backend import check_observation
from lam_ros.policy.model import TransformerPolicy
import numpy as np
import torch


class PolicyRunner:
    """Observation dict in, one (action_dim,) float64 command in real units out, per step."""

    def __init__(self, model: TransformerPolicy, query_every: int = 1,
                 ensemble_decay: float = 0.01) -> None:
        """
        Wrap a trained policy (put into eval mode) for closed-loop control.

        query_every: the policy runs on every query_every-th step (1 = every step; at most
        chunk_size, since a chunk covers chunk_size steps). ensemble_decay: weight decay of
        older predictions in the temporal ensemble (0 = plain mean).
        """
        if not isinstance(model, TransformerPolicy):
            raise ValueError(f'PolicyRunner needs a TransformerPolicy, got '
                             f'{type(model).__name__}')
        config = model.config
        if isinstance(query_every, bool) or not isinstance(query_every, (int, np.integer)) \
                or not 1 <= query_every <= config.chunk_size:
            raise ValueError(f'query_every must be an int in [1, chunk_size={config.chunk_size}]'
                             f' (policy calls every n control steps), got {query_every!r}')
        self.model = model.eval()
        self.config = config
        self.query_every = int(query_every)
        self.ensembler = TemporalEnsembler(config.chunk_size, config.action_dim, ensemble_decay)
        self._binary_at = _binary_gripper_index(config)
        self._device = next(model.parameters()).device
        self.reset()

    @property
    def step_count(self) -> int:
        """Control steps served since the last reset."""
        return self.ensembler.step

    @property
    def policy_calls(self) -> int:
        """Return how many times the policy ran since the last reset."""
        return self._calls

    def reset(self) -> None:
        """Forget the history and all chunks; call at the start of every episode."""
        self._history: Deque[Dict[str, np.ndarray]] = deque(maxlen=self.config.history_len)
        self.ensembler.reset()
        self._calls = 0

    def check_observation(self, obs: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
        """
        Return the policy's keys of obs as arrays; raise ValueError on a missing or bad key.

        Extra keys are ignored, so a full env observation or a node's latest messages can be
        passed as they are.
        """
        if not isinstance(obs, Mapping):
            raise ValueError(f'observation must be a dict of arrays, got {type(obs).__name__}')
        return check_observation(self.config, obs)

    def _inputs(self) -> tuple:
        """Stack the history into (1, H, ...) tensors; missing old steps are masked."""
        history = list(self._history)
        pad = self.config.history_len - len(history)
        # Padded steps repeat the first observation, as the training windows do; the mask
        # keeps them out of attention anyway.
        steps = [history[0]] * pad + history
        obs = {}
        for key in self.config.obs_spec:
            array = np.stack([s[key] for s in steps])[None]
            obs[key] = torch.from_numpy(array).to(self._device)
        mask = torch.tensor([[False] * pad + [True] * len(history)], device=self._device)
        return obs, mask

    def predict_chunk(self) -> np.ndarray:
        """Run the policy on the current history; return the (chunk_size, A) chunk, float64."""
        if not self._history:
            raise RuntimeError('no observation yet: call step(obs) first')
        obs, mask = self._inputs()
        chunk = self.model.predict(obs, mask)[0]
        return chunk.detach().to('cpu', torch.float64).numpy()

    def step(self, obs: Mapping[str, np.ndarray]) -> np.ndarray:
        """Take this control step's observation; return the command for the coming period."""
        self._history.append(self.check_observation(obs))
        if self.ensembler.step % self.query_every == 0:
            self.ensembler.add_chunk(self.predict_chunk())
            self._calls += 1
        action = self.ensembler.next_action()
        if self._binary_at >= 0:
            # A binary gripper takes open (1) or closed (0), never a blend of the two.
            action[self._binary_at] = 1.0 if action[self._binary_at] >= 0.5 else 0.0
        return action

    def __call__(self, obs: Mapping[str, np.ndarray]) -> np.ndarray:
        """Alias of step()."""
        return self.step(obs)


def _binary_gripper_index(config: object) -> int:
    """Return the action index of a binary gripper of the policy's robot, else -1."""
    from lam_ros.description import load_robot
    try:
        grip = load_robot(getattr(config, 'robot', '') or None).gripper
    except (FileNotFoundError, ValueError):
        return -1  # a robot this machine has no description of: actions pass unchanged
    names = list(getattr(config, 'joint_names', ()))
    return names.index(grip.joint) if grip.kind == 'binary' and grip.joint in names else -1


def camera_shape(model: TransformerPolicy) -> Optional[tuple]:
    """Return (height, width) of the policy's camera images, or None when it uses none."""
    for key in model.config.image_keys:
        return tuple(model.config.obs_spec[key][:2])
    return None
