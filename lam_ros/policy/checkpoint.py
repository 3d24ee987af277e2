"""
Policy checkpoints: a directory with model.safetensors and config.json, nothing pickled.

config.json holds the policy config (robot, observation spec, joint names, rate), a readable
copy of the normalisation statistics (the weights file holds the ones used), the SHA-256 of the
weights and free-form metadata (task, training info). A checkpoint is written into a temporary
directory and renamed into place, so a crash never leaves a half-written one at the target; it
gets the permissions of any other output (the umask's), not the temporary directory's 0700.
"""

import hashlib
import json
import os
import shutil
import tempfile
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple, Union

from lam_ros.description.files import dir_mode, fsync_dir
from lam_ros.policy.config import PolicyConfig
from lam_ros.policy.model import TransformerPolicy
from safetensors import SafetensorError
from safetensors.torch import load, save
import torch

WEIGHTS_FILE = 'model.safetensors'
CONFIG_FILE = 'config.json'
FORMAT = 'lam_ros.policy'
FORMAT_VERSION = 1
PathLike = Union[str, 'os.PathLike[str]']


class CheckpointError(Exception):
    """A checkpoint is missing, damaged, or does not fit what the caller expects."""


def resolve_device(device: str) -> torch.device:
    """Map 'auto' to 'cuda' when a GPU is present, else 'cpu'; pass other names through."""
    if device == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    try:
        return torch.device(device)
    except RuntimeError as err:
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}") \
            from err


def save_checkpoint(directory: PathLike, model: TransformerPolicy,
                    metadata: Optional[Mapping[str, Any]] = None) -> str:
    """Write model and JSON-safe metadata to directory (replaced atomically); return its path."""
    if not isinstance(model, TransformerPolicy):
        raise ValueError(f'save_checkpoint needs a TransformerPolicy, got {type(model).__name__}')
    metadata = dict(metadata or {})
    try:
        json.dumps(metadata, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise ValueError(f'checkpoint metadata must be JSON-safe (str, numbers, lists, dicts): '
                         f'{err}') from err
    tensors = {k: v.detach().to('cpu').contiguous() for k, v in model.state_dict().items()}
    weights = save(tensors)
    config = model.config
    document = {
        'format': FORMAT,
        'format_version': FORMAT_VERSION,
        'policy_config': config.to_dict(),
        'robot': config.robot,
        'joint_names': list(config.joint_names),
        'obs_spec': {k: list(v) for k, v in config.obs_spec.items()},
        'control_rate_hz': config.control_rate_hz,
        'normalization_fitted': model.normalizer.is_fitted,
        'normalization': model.normalizer.state_stats(),
        'num_parameters': model.num_parameters(),
        'weights_sha256': hashlib.sha256(weights).hexdigest(),
        'metadata': metadata,
    }
    target = os.path.abspath(os.fspath(directory))
    parent = os.path.dirname(target)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix='.' + os.path.basename(target) + '.tmp-', dir=parent)
    try:
        os.chmod(tmp, dir_mode())
        _write(os.path.join(tmp, WEIGHTS_FILE), weights)
        _write(os.path.join(tmp, CONFIG_FILE),
               (json.dumps(document, indent=2, allow_nan=False) + '\n').encode())
        if os.path.isdir(target):
            # A directory cannot be renamed over a non-empty one: move the old one aside first.
            old = tempfile.mkdtemp(prefix='.' + os.path.basename(target) + '.old-', dir=parent)
            os.rename(target, os.path.join(old, 'ckpt'))
            os.rename(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, target)
        fsync_dir(parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def load_checkpoint(directory: PathLike, device: str = 'cpu',
                    expected_joint_names: Optional[Sequence[str]] = None,
                    expected_obs_spec: Optional[Mapping[str, Sequence[int]]] = None,
                    ) -> Tuple[TransformerPolicy, Dict[str, Any]]:
    """
    Load a checkpoint as (model in eval mode on device, metadata).

    expected_joint_names / expected_obs_spec, when given, must equal what the policy was
    trained with. Every failure raises CheckpointError with the reason.
    """
    path = os.fspath(directory)
    document = _read_config(path)
    try:
        config = PolicyConfig.from_dict(document['policy_config'])
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f'{path}: invalid policy config in {CONFIG_FILE}: {err}') from err
    if expected_joint_names is not None and list(expected_joint_names) != list(
            config.joint_names):
        raise CheckpointError(
            f'{path}: the policy commands joints {list(config.joint_names)} but this robot '
            f'expects {list(expected_joint_names)}; use a checkpoint trained on these joints')
    if expected_obs_spec is not None:
        want = {k: tuple(v) for k, v in expected_obs_spec.items()}
        if want != config.obs_spec:
            raise CheckpointError(f'{path}: the policy observes {config.obs_spec} but '
                                  f'{want} was expected')
    try:
        with open(os.path.join(path, WEIGHTS_FILE), 'rb') as f:
            weights = f.read()
    except OSError as err:
        raise CheckpointError(f'{path}: cannot read {WEIGHTS_FILE}: {err}') from err
    if hashlib.sha256(weights).hexdigest() != document.get('weights_sha256'):
        raise CheckpointError(f'{path}: {WEIGHTS_FILE} does not match the checksum in '
                              f'{CONFIG_FILE} (truncated, corrupted or from another save)')
    try:
        tensors = load(weights)
    except (SafetensorError, ValueError) as err:
        raise CheckpointError(f'{path}: {WEIGHTS_FILE} is not a valid safetensors file: '
                              f'{err}') from err
    try:
        torch_device = resolve_device(device)
    except ValueError as err:
        raise CheckpointError(str(err)) from err
    model = TransformerPolicy(config)
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as err:
        raise CheckpointError(f'{path}: weights do not fit the policy config: {err}') from err
    return model.to(torch_device).eval(), dict(document.get('metadata') or {})


def read_checkpoint_config(directory: PathLike) -> Dict[str, Any]:
    """Return the parsed config.json of a checkpoint without loading weights."""
    return _read_config(os.fspath(directory))


def _read_config(path: str) -> Dict[str, Any]:
    if not os.path.isdir(path):
        raise CheckpointError(f'{path}: no checkpoint directory here (expected {WEIGHTS_FILE} '
                              f'and {CONFIG_FILE})')
    try:
        with open(os.path.join(path, CONFIG_FILE), encoding='utf-8') as f:
            document = json.load(f)
    except OSError as err:
        raise CheckpointError(f'{path}: cannot read {CONFIG_FILE}: {err}') from err
    except ValueError as err:
        raise CheckpointError(f'{path}: {CONFIG_FILE} is not valid JSON: {err}') from err
    if not isinstance(document, dict) or document.get('format') != FORMAT:
        raise CheckpointError(f'{path}: {CONFIG_FILE} is not a {FORMAT} checkpoint config')
    if document.get('format_version') != FORMAT_VERSION:
        raise CheckpointError(f'{path}: checkpoint format version '
                              f'{document.get("format_version")!r}, this code reads '
                              f'{FORMAT_VERSION}')
    return document


def _write(path: str, data: bytes) -> None:
    with open(path, 'wb') as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
