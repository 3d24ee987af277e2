"""
Policy backends for live control: an observation history in, one action chunk out.

A backend is any object with ``config`` (the :class:`PolicyConfig` it was trained with) and
``predict_chunk(obs, mask) -> (chunk_size, action_dim) float64`` taking numpy arrays stacked
by :func:`stack_history` (``obs[key]`` is (1, H, *shape), ``mask`` (1, H) bool). The inference
node only ever calls that, so a PyTorch model, an exported model or a model in another process
are interchangeable:

- :class:`TorchBackend`: the checkpoint's model on CPU or CUDA, optionally in half precision
  and compiled (GPU only);
- :class:`ProcessBackend`: any backend built by a factory in a child process, so the policy's
  Python work never holds the control loop's interpreter lock.
"""

from __future__ import annotations

from collections import deque
import multiprocessing
from typing import Any, Callable, Deque, Dict, Mapping, Optional, Sequence, Tuple

from lam_ros.policy.config import image_kind, PolicyConfig
import numpy as np

BACKENDS = ('torch',)
"""Names accepted by :func:`load_backend`."""


def check_observation(config: PolicyConfig, obs: Mapping[str, Any]) -> Dict[str, np.ndarray]:
    """Return the policy's keys of ``obs`` as arrays; ValueError names a missing or bad key."""
    missing = [k for k in config.obs_spec if k not in obs]
    if missing:
        raise ValueError(f'observation lacks {missing}; the policy observes '
                         f'{dict(config.obs_spec)} (key: shape)')
    out = {}
    for key, shape in config.obs_spec.items():
        value = np.asarray(obs[key])
        if value.shape != tuple(shape):
            raise ValueError(f'observation {key!r} has shape {value.shape}, the policy expects '
                             f'{tuple(shape)}')
        if image_kind(key) == 'rgb':
            if value.dtype != np.uint8:
                raise ValueError(f'observation {key!r} must be uint8 (0..255), got {value.dtype}')
        else:
            value = value.astype(np.float32)
            if not np.all(np.isfinite(value)):
                raise ValueError(f'observation {key!r} contains NaN or Inf: refusing to run '
                                 'the policy on it')
        out[key] = value
    return out


class ObservationHistory:
    """The last ``history_len`` observations, stacked as the training windows are."""

    def __init__(self, config: PolicyConfig) -> None:
        """Start empty for a policy with ``config``."""
        self.config = config
        self._steps: Deque[Dict[str, np.ndarray]] = deque(maxlen=config.history_len)

    def __len__(self) -> int:
        """Return the number of stored steps."""
        return len(self._steps)

    def clear(self) -> None:
        """Forget every step (a new episode)."""
        self._steps.clear()

    def append(self, obs: Mapping[str, Any]) -> None:
        """Check and store one step's observation."""
        self._steps.append(check_observation(self.config, obs))

    def stacked(self) -> Tuple[Dict[str, np.ndarray], np.ndarray]:
        """Return (obs key -> (1, H, ...), mask (1, H)); steps before the start are masked."""
        if not self._steps:
            raise RuntimeError('no observation yet: append one first')
        steps = list(self._steps)
        pad = self.config.history_len - len(steps)
        # Padding repeats the first step, like the training windows; the mask hides it anyway.
        steps = [steps[0]] * pad + steps
        obs = {k: np.stack([s[k] for s in steps])[None] for k in self.config.obs_spec}
        mask = np.array([[False] * pad + [True] * (len(steps) - pad)])
        return obs, mask


class TorchBackend:
    """A TransformerPolicy on its device; optional fp16 and torch.compile on CUDA."""

    def __init__(self, model: Any, half: bool = False, compile_model: bool = False) -> None:
        """Wrap ``model`` (moved to eval mode); half/compile are refused on a CPU device."""
        import torch
        self._torch = torch
        self.model = model.eval()
        self.config: PolicyConfig = model.config
        self.device = next(model.parameters()).device
        if (half or compile_model) and self.device.type != 'cuda':
            raise ValueError('half precision and compile need a CUDA device; the policy is on '
                             f'{self.device} (set device:=cuda, or half:=false compile:=false)')
        self.half = bool(half)
        self.compiled = bool(compile_model)
        self._forward = model.predict
        if self.half:
            self.model = self.model.half()
        if compile_model:
            self._forward = torch.compile(model.predict, mode='reduce-overhead')

    @property
    def name(self) -> str:
        """Describe the backend (for logs and diagnostics)."""
        extra = (' fp16' if self.half else '') + (' compiled' if self.compiled else '')
        return f'torch on {self.device}{extra}'

    def predict_chunk(self, obs: Mapping[str, np.ndarray], mask: np.ndarray) -> np.ndarray:
        """Run one forward pass; return the (chunk_size, action_dim) chunk in real units."""
        torch = self._torch
        dtype = torch.float16 if self.half else torch.float32
        with torch.inference_mode():
            inputs = {}
            for key, value in obs.items():
                tensor = torch.from_numpy(np.ascontiguousarray(value)).to(self.device)
                inputs[key] = tensor if image_kind(key) == 'rgb' else tensor.to(dtype)
            mask_t = torch.from_numpy(np.asarray(mask, dtype=bool)).to(self.device)
            chunk = self._forward(inputs, mask_t)[0]
            return chunk.to('cpu', torch.float64).numpy()


def load_backend(checkpoint: str, backend: str = 'torch', device: str = 'auto',
                 half: bool = False, compile_model: bool = False, num_threads: int = 0,
                 expected_joint_names: Optional[Sequence[str]] = None) -> Any:
    """
    Load a checkpoint into the named backend; CheckpointError or ValueError on failure.

    num_threads > 0 sets torch's CPU threads for this process (0 keeps torch's default).
    """
    if backend not in BACKENDS:
        raise ValueError(f'backend must be one of {BACKENDS}, got {backend!r}')
    if num_threads > 0:
        import torch
        torch.set_num_threads(int(num_threads))
    from lam_ros.policy.checkpoint import load_checkpoint
    model, _ = load_checkpoint(checkpoint, device=device,
                               expected_joint_names=expected_joint_names)
    return TorchBackend(model, half=half, compile_model=compile_model)


def _serve(factory: Callable[[], Any], conn: Any) -> None:
    """Child process: build the backend, then answer predict requests until told to stop."""
    try:
        backend = factory()
    except Exception as err:  # noqa: B902 - reported to the parent, which raises it
        conn.send(('error', f'{type(err).__name__}: {err}'))
        return
    conn.send(('ready', (backend.config.to_dict(), getattr(backend, 'name', 'backend'))))
    while True:
        try:
            request = conn.recv()
        except EOFError:
            return
        if request is None:
            return
        try:
            conn.send(('ok', backend.predict_chunk(*request)))
        except Exception as err:  # noqa: B902 - the parent decides what a failure means
            conn.send(('error', f'{type(err).__name__}: {err}'))


class ProcessBackend:
    """Run a backend in a spawned child process behind the same ``predict_chunk`` call."""

    def __init__(self, factory: Callable[[], Any], start_timeout_s: float = 120.0) -> None:
        """Start the child; ``factory`` (picklable) builds the backend there."""
        ctx = multiprocessing.get_context('spawn')
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(factory, child), daemon=True,
                                 name='lam_ros-policy')
        self._proc.start()
        child.close()
        if not self._conn.poll(start_timeout_s):
            self.close()
            raise RuntimeError(f'the policy process did not start within {start_timeout_s} s')
        kind, payload = self._conn.recv()
        if kind != 'ready':
            self.close()
            raise ValueError(payload)
        self.config = PolicyConfig.from_dict(payload[0])
        self.name = f'{payload[1]} (own process)'

    def predict_chunk(self, obs: Mapping[str, np.ndarray], mask: np.ndarray) -> np.ndarray:
        """Send the stacked observation to the child and wait for its chunk."""
        self._conn.send((dict(obs), mask))
        kind, payload = self._conn.recv()
        if kind != 'ok':
            raise RuntimeError(f'policy process: {payload}')
        return payload

    def close(self) -> None:
        """Stop the child process."""
        try:
            self._conn.send(None)
        except (OSError, ValueError):
            pass
        self._proc.join(timeout=5.0)
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(timeout=5.0)
        self._conn.close()
