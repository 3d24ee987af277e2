"""
The training pipeline's parameters, read from a ROS params file.

One file serves the ROS node and the plain CLI: ``config/train.yaml`` in the
``node_name: ros__parameters: ...`` layout (``/**`` entries apply too). Every parameter
is a field of :class:`PipelineConfig`; the policy and BC defaults are those of
:class:`~lam_ros.policy.PolicyConfig` and :class:`~lam_ros.learn.bc.BCConfig`.
"""

from dataclasses import dataclass, field, fields, MISSING
import math
import os
import typing
from typing import Any, Dict, List, Optional

from lam_ros.learn.bc import BCConfig
from lam_ros.learn.evaluate import EVAL_SEED_START
from lam_ros.learn.rl.config import RLConfig
from lam_ros.policy import PolicyConfig, resolve_device
from lam_ros.policy.config import IMAGE_ENCODERS
import yaml

NODE_NAME = 'trainer_node'
_POLICY = {f.name: f.default for f in fields(PolicyConfig) if f.default is not MISSING}
_BC = {f.name: f.default for f in fields(BCConfig) if f.default is not MISSING}
_RL = {f.name: f.default for f in fields(RLConfig) if f.default is not MISSING}
ROS_STANDARD_PARAMETERS = ('use_sim_time', 'start_type_description_service')
"""Parameters every rclpy node has; a params file may set them."""


@dataclass
class PipelineConfig:
    """Dataset from bags -> behaviour cloning -> RL fine-tuning -> evaluation -> export."""

    dataset: str = ''
    """Recorded demonstrations: a recorder output directory of bags, or a dataset cache
    (.safetensors from lam-ros dataset build)."""
    output_dir: str = 'lam_ros_training'
    """Run directory: dataset cache, bc/, rl/, evaluation.json, policy/ (the exported best
    checkpoint) and pipeline.json. Running again resumes where it stopped."""
    task: str = ''
    """Task of the evaluation and RL env ('lift', 'pick_place'); '' takes dataset.yaml's."""
    rate_hz: float = 20.0
    """Policy rate (Hz) at which bags are resampled."""
    observations: List[str] = field(default_factory=list)
    """Observation keys the policy sees; empty: the robot-side defaults the dataset has."""
    head: str = 'gaussian'
    """Action head: 'gaussian' (needed by RL) or 'regression'."""
    history_len: int = _POLICY['history_len']
    """Observation steps the policy sees."""
    chunk_size: int = _POLICY['chunk_size']
    """Future actions predicted per policy call."""
    d_model: int = _POLICY['d_model']
    """Transformer token width."""
    n_heads: int = _POLICY['n_heads']
    """Attention heads."""
    n_layers: int = _POLICY['n_layers']
    """Transformer blocks."""
    dropout: float = _POLICY['dropout']
    """Dropout probability."""
    image_encoder: str = _POLICY['image_encoder']
    """Camera image encoder: 'resnet' (GroupNorm ResNet trunk + spatial softmax) or 'cnn'
    (smaller, far weaker in benchmarks/bench_vision.py); unused without camera observations."""
    image_shift: int = _BC['image_shift']
    """Random shift (pixels) of camera images during BC training; 0 turns it off."""
    bc_steps: int = _BC['steps']
    """Behaviour-cloning optimizer steps."""
    bc_batch_size: int = _BC['batch_size']
    """Windows per BC step (per rank under torchrun)."""
    bc_lr: float = _BC['lr']
    """Peak BC learning rate."""
    bc_eval_interval: int = _BC['eval_interval']
    """BC steps between validation and checkpoints."""
    val_fraction: float = _BC['val_fraction']
    """Fraction of episodes held out for BC validation."""
    rl_env_steps: int = _RL['total_env_steps']
    """RL fine-tuning budget in env steps (all envs and ranks together); 0 skips RL."""
    rl_num_envs: int = _RL['num_envs']
    """Parallel RL envs per rank, each in its own worker process."""
    rl_rollout_steps: int = _RL['rollout_steps']
    """Control steps per env between two PPO updates."""
    rl_eval_interval: int = _RL['eval_interval']
    """Env steps between RL evaluations (each may replace rl/best)."""
    rl_eval_episodes: int = _RL['eval_episodes']
    """Episodes per RL evaluation (validation seeds, not the final evaluation's)."""
    eval_episodes: int = 50
    """Seeded evaluation episodes per candidate checkpoint."""
    eval_seed: int = EVAL_SEED_START
    """Env seed of the first evaluation episode (far from demonstration seeds)."""
    seed: int = 0
    """Seed of the episode split, sampling and initialisation."""
    device: str = 'auto'
    """'auto' (cuda when present), 'cpu', 'cuda' or 'cuda:N'."""
    num_threads: int = 0
    """torch CPU threads; 0 keeps torch's default."""

    def __post_init__(self) -> None:
        """Validate every field, naming the one that is wrong."""
        hints = typing.get_type_hints(type(self))
        for f in fields(self):
            _check_type(f.name, getattr(self, f.name), hints[f.name])
        self.observations = list(self.observations)
        for name in ('history_len', 'chunk_size', 'd_model', 'n_heads', 'n_layers', 'bc_steps',
                     'bc_batch_size', 'bc_eval_interval', 'eval_episodes'):
            if getattr(self, name) < 1:
                raise ValueError(f'{name} must be >= 1, got {getattr(self, name)}')
        for name in ('rl_env_steps', 'seed', 'num_threads', 'eval_seed'):
            if getattr(self, name) < 0:
                raise ValueError(f'{name} must be >= 0, got {getattr(self, name)}')
        if self.head not in ('gaussian', 'regression'):
            raise ValueError(f"head must be 'gaussian' or 'regression', got {self.head!r}")
        if self.rl_env_steps and self.head != 'gaussian':
            raise ValueError("RL fine-tuning needs head 'gaussian'; set rl_env_steps: 0 or "
                             'head: gaussian')
        if self.task not in ('', 'lift', 'pick_place'):
            raise ValueError(f"task must be 'lift', 'pick_place' or '' (the dataset's), got "
                             f'{self.task!r}')
        if self.rate_hz <= 0 or not 0.0 <= self.dropout < 1.0 or self.bc_lr <= 0:
            raise ValueError('rate_hz and bc_lr must be > 0 and dropout in [0, 1), got '
                             f'{self.rate_hz}, {self.bc_lr}, {self.dropout}')
        if self.image_encoder not in IMAGE_ENCODERS:
            raise ValueError(f'image_encoder must be one of {", ".join(IMAGE_ENCODERS)}, got '
                             f'{self.image_encoder!r}')
        if self.d_model % self.n_heads:
            raise ValueError(f'd_model ({self.d_model}) must be a multiple of n_heads '
                             f'({self.n_heads})')
        self.bc_config()  # BCConfig and RLConfig check the rest (val_fraction, device, ...)
        if self.rl_env_steps:
            self.rl_config()
        resolve_device(self.device)

    def check_paths(self) -> None:
        """Check the dataset and output paths before anything is written; ValueError if bad."""
        if not self.dataset:
            raise ValueError('dataset is empty: set it to a directory of recorded bags or a '
                             'dataset cache file')
        if not os.path.exists(self.dataset):
            raise ValueError(f'dataset {self.dataset!r} does not exist')
        if os.path.isfile(self.dataset) and not self.dataset.endswith('.safetensors'):
            raise ValueError(f'dataset {self.dataset!r} is a file but not a dataset cache '
                             '(.safetensors); give the directory of bags instead')
        if not self.output_dir:
            raise ValueError('output_dir is empty: set it to the run directory')
        if os.path.exists(self.output_dir) and not os.path.isdir(self.output_dir):
            raise ValueError(f'output_dir {self.output_dir!r} exists and is not a directory')

    def bc_config(self, progress: bool = False) -> BCConfig:
        """Return the behaviour-cloning configuration."""
        return BCConfig(steps=self.bc_steps, batch_size=self.bc_batch_size, lr=self.bc_lr,
                        eval_interval=self.bc_eval_interval, val_fraction=self.val_fraction,
                        seed=self.seed, device=self.device, num_threads=self.num_threads,
                        image_shift=self.image_shift,
                        warmup_steps=min(_BC['warmup_steps'], self.bc_steps // 10),
                        progress=progress)

    def rl_config(self, progress: bool = False) -> RLConfig:
        """Return the RL fine-tuning configuration."""
        return RLConfig(total_env_steps=self.rl_env_steps, num_envs=self.rl_num_envs,
                        rollout_steps=self.rl_rollout_steps,
                        eval_interval=self.rl_eval_interval,
                        eval_episodes=self.rl_eval_episodes, seed=self.seed,
                        device=self.device, num_threads=self.num_threads, progress=progress)

    def policy_sizes(self) -> Dict[str, Any]:
        """Return the PolicyConfig keyword arguments set by this file."""
        return {k: getattr(self, k) for k in ('head', 'history_len', 'chunk_size', 'd_model',
                                              'n_heads', 'n_layers', 'dropout',
                                              'image_encoder')}


@dataclass
class TrainerNodeOptions:
    """How trainer_node reports progress (the plain CLI ignores these)."""

    diagnostics_topic: str = '/diagnostics'
    """Topic of the diagnostic_msgs/DiagnosticArray progress reports."""
    status_rate_hz: float = 2.0
    """Progress reports per second."""
    exit_when_done: bool = False
    """Exit once the pipeline ends; by default the node stays up so that the latched best
    checkpoint path and the final status remain available until SIGINT."""

    def __post_init__(self) -> None:
        """Validate the fields."""
        _check_type('diagnostics_topic', self.diagnostics_topic, str)
        _check_type('status_rate_hz', self.status_rate_hz, float)
        if not isinstance(self.exit_when_done, bool):
            raise ValueError(f'exit_when_done must be true or false, got '
                             f'{self.exit_when_done!r}')
        if not self.diagnostics_topic or not 0.0 < self.status_rate_hz <= 100.0:
            raise ValueError('diagnostics_topic must be set and status_rate_hz in (0, 100], got '
                             f'{self.diagnostics_topic!r}, {self.status_rate_hz}')


def _check_type(name: str, value: Any, hint: Any) -> None:
    origin = typing.get_origin(hint)
    if origin in (list, List):
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise ValueError(f'{name} must be a list of strings, got {value!r}')
    elif hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value):
            raise ValueError(f'{name} must be a finite number, got {value!r}')
    elif hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f'{name} must be an integer, got {value!r}')
    elif hint is str and not isinstance(value, str):
        raise ValueError(f'{name} must be a string, got {value!r}')


def _node_sections(document: Any, path: str, node_name: str) -> List[Dict[str, Any]]:
    if not isinstance(document, dict):
        raise ValueError(f'{path}: expected "{node_name}: ros__parameters: ..." at the top, '
                         f'got {type(document).__name__}')
    sections = []
    for key, entry in document.items():
        name = str(key)
        if name in ('/**', '**') or name.lstrip('/') == node_name \
                or name.endswith('/' + node_name):
            params = entry.get('ros__parameters') if isinstance(entry, dict) else None
            if not isinstance(params, dict):
                raise ValueError(f'{path}: {name!r} has no "ros__parameters:" mapping')
            sections.append(params)
    if not sections:
        raise ValueError(f'{path}: no "{node_name}:" (or "/**:") section with ros__parameters; '
                         f'it has {sorted(map(str, document))}')
    return sections


def _known_names() -> set:
    return ({f.name for f in fields(PipelineConfig)} | {f.name for f in fields(
        TrainerNodeOptions)} | set(ROS_STANDARD_PARAMETERS))


def read_params_file(path: str, node_name: str = NODE_NAME) -> Dict[str, Any]:
    """
    Return the parameters a ROS params file gives node_name, checked against the config.

    Raises ValueError with the file and the offending key for a missing or unreadable file,
    a wrong layout or an unknown parameter name.
    """
    if not os.path.isfile(path):
        raise ValueError(f'params file {path!r} does not exist')
    try:
        with open(path, encoding='utf-8') as stream:
            document = yaml.safe_load(stream)
    except (OSError, yaml.YAMLError) as err:
        raise ValueError(f'cannot read params file {path}: {" ".join(str(err).split())}') \
            from err
    values: Dict[str, Any] = {}
    for section in _node_sections(document, path, node_name):
        values.update(section)
    known = _known_names()
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f'{path}: unknown parameter(s) {unknown} for {node_name}; known: '
                         f'{sorted(known)}')
    return values


def load_pipeline_config(path: Optional[str] = None,
                         overrides: Optional[Dict[str, Any]] = None) -> PipelineConfig:
    """Build the PipelineConfig from a params file (optional) and overrides; ValueError if bad."""
    values = read_params_file(path) if path else {}
    values.update(overrides or {})
    unknown = sorted(set(values) - _known_names())
    if unknown:
        raise ValueError(f'unknown parameter(s) {unknown}; known: {sorted(_known_names())}')
    try:
        TrainerNodeOptions(**{f.name: values[f.name] for f in fields(TrainerNodeOptions)
                              if f.name in values})
        return PipelineConfig(**{f.name: values[f.name] for f in fields(PipelineConfig)
                                 if f.name in values})
    except ValueError as err:
        raise ValueError(f'{path + ": " if path else ""}{err}') from err
