"""The policy's configuration: what it observes, what it commands, and its size."""

from dataclasses import asdict, dataclass, field, fields
import math
import re
from typing import Any, Dict, Mapping, Tuple

from lam_ros.description import DEFAULT_ROBOT, load_robot
# The image-key convention ('<camera>_rgb', '<camera>_depth') lives in the torch-free
# description so that the sim and data packages share it; the policy re-exports it.
from lam_ros.description.camera import (  # noqa: F401 (re-exported)
    camera_name, check_image_keys, image_channels, image_key, image_kind, IMAGE_KINDS)

HEADS = ('regression', 'gaussian')
REGRESSION_LOSSES = ('l1', 'mse')
IMAGE_ENCODERS = ('cnn', 'resnet')
VECTOR_TOKENS = ('key', 'step')
# Default cap of the decoder's width (see PolicyConfig.decoder_d_model).
DECODER_WIDTH_CAP = 128
# Keys become parameter names in the checkpoint, so they must be plain identifiers.
_KEY_PATTERN = re.compile(r'^[a-z][a-z0-9_]*$')


@dataclass
class PolicyConfig:
    """Everything needed to rebuild a TransformerPolicy; stored in every checkpoint."""

    joint_names: Tuple[str, ...]
    """Commanded joints in action order; the action dimension is their number."""
    obs_spec: Dict[str, Tuple[int, ...]]
    """Observation key -> per-step shape, e.g. {'joint_pos': (8,), 'scene_rgb': (84, 84, 3)}."""
    history_len: int = 2
    """Observation steps the policy sees, the current one last."""
    chunk_size: int = 20
    """Future actions predicted per call, one per control step (1 s at 20 Hz)."""
    d_model: int = 64
    """Width of every token."""
    n_heads: int = 4
    """Attention heads; must divide d_model."""
    n_layers: int = 2
    """Encoder blocks (self-attention over the observation tokens)."""
    ff_mult: int = 4
    """Width of the encoder's feed-forward layers as a multiple of d_model."""
    n_decoder_layers: int = 1
    """Decoder blocks, in which the action queries attend to the encoded observations."""
    decoder_ff_mult: int = 1
    """Width of the decoder's feed-forward layers as a multiple of its width (kept small: they
    run once per action query)."""
    vector_tokens: str = 'key'
    """'key': one token per vector observation key and history step; 'step': one token per
    history step for all vector keys together (a quarter of the tokens for the Panda's four
    keys, so the encoder's width and depth cost a quarter per call; pair it with
    decoder_memory_tokens 4, and check success: it learns less from a small training budget)."""
    decoder_memory_tokens: int = 1
    """Each encoded observation token becomes this many memory tokens for the decoder, so that
    few observation tokens still give the action queries several keys to attend to."""
    decoder_d_model: int = 0
    """Width of the decoder (action queries); 0 takes min(d_model, DECODER_WIDTH_CAP), as the
    decoder runs once per action query while the encoder runs once per observation token."""
    dropout: float = 0.1
    """Dropout probability in attention and feed-forward layers, in [0, 1)."""
    head: str = 'regression'
    """'regression' (deterministic chunk) or 'gaussian' (mean and log-std, for RL)."""
    regression_loss: str = 'l1'
    """'l1' or 'mse' on normalised actions; used by the regression head."""
    robot: str = DEFAULT_ROBOT
    """Robot description the policy commands (a name under config/robots/ or a YAML path)."""
    control_rate_hz: float = 0.0
    """Rate of the observation history and of the predicted action chunk (Hz); 0 takes the
    ``control_rate_hz`` of the robot description."""
    image_encoder: str = 'resnet'
    """'resnet' (a ResNet-GroupNorm trunk and spatial-softmax keypoints) or 'cnn' (stride-2
    convs average-pooled to a grid; far weaker in benchmarks/bench_vision.py); see
    lam_ros/policy/vision.py."""
    image_channels: Tuple[int, ...] = (32, 64, 64)
    """Channels per stage of the image encoder: its stride-2 conv layers ('cnn'), or the
    stem and residual stages ('resnet', each later stage halving the resolution)."""
    image_grid: int = 2
    """Each image becomes image_grid**2 tokens (the pooled grid, or the projected keypoints)."""
    image_keypoints: int = 32
    """Spatial-softmax keypoints per image ('resnet' encoder)."""
    depth_max_m: float = 2.0
    """Depth images are clipped to [0, depth_max_m] metres and scaled to [0, 1]."""
    init_log_std: float = 0.0
    """Initial log-std of the gaussian head, in normalised action units."""
    log_std_min: float = -5.0
    """Lower clamp of the gaussian head's log-std (keeps the likelihood finite)."""
    log_std_max: float = 2.0
    """Upper clamp of the gaussian head's log-std."""
    extra: Dict[str, Any] = field(default_factory=dict)
    """Free-form JSON-safe notes that travel with the config (not used by the model)."""

    def __post_init__(self) -> None:
        """Normalise container types and validate every field."""
        if isinstance(self.joint_names, str) or not isinstance(self.joint_names, (list, tuple)):
            raise ValueError(
                f'joint_names must be a list of joint names, got {self.joint_names!r}')
        self.joint_names = tuple(self.joint_names)
        if not isinstance(self.obs_spec, Mapping):
            raise ValueError(
                f'obs_spec must map observation keys to shapes, got {self.obs_spec!r}')
        self.obs_spec = {str(k): _shape(k, v) for k, v in self.obs_spec.items()}
        self.image_channels = tuple(self.image_channels)
        if not self.control_rate_hz:
            self.control_rate_hz = load_robot(self.robot).control_rate_hz
        self.validate()

    @property
    def action_dim(self) -> int:
        """Length of one action vector (one target per joint)."""
        return len(self.joint_names)

    @property
    def decoder_width(self) -> int:
        """Width the decoder runs at (decoder_d_model, or its default when 0)."""
        return self.decoder_d_model or min(self.d_model, DECODER_WIDTH_CAP)

    @property
    def lowdim_keys(self) -> Tuple[str, ...]:
        """Vector observation keys, sorted so token order never depends on dict order."""
        return tuple(sorted(k for k in self.obs_spec if image_kind(k) is None))

    @property
    def image_keys(self) -> Tuple[str, ...]:
        """Camera observation keys, sorted."""
        return tuple(sorted(k for k in self.obs_spec if image_kind(k) is not None))

    @property
    def cameras(self) -> Tuple[str, ...]:
        """Names of the cameras the policy observes, sorted."""
        return tuple(sorted({camera_name(k) for k in self.image_keys}))

    def validate(self) -> None:
        """Raise ValueError naming the first field that is out of range."""
        if not self.joint_names or not all(isinstance(n, str) and n for n in self.joint_names):
            raise ValueError(
                f'joint_names must be a non-empty list of names, got {self.joint_names!r}')
        if len(set(self.joint_names)) != len(self.joint_names):
            raise ValueError(f'joint_names has duplicates: {self.joint_names!r}')
        if not self.obs_spec:
            raise ValueError("obs_spec is empty; give at least one key, e.g. {'joint_pos': (8,)}")
        check_image_keys(self.obs_spec, 'obs_spec')
        for key, shape in self.obs_spec.items():
            if not _KEY_PATTERN.match(key) or key == 'action':
                raise ValueError(
                    f'obs_spec key {key!r} must be a lower-case identifier other than "action"')
            channels = image_channels(key)
            if channels is not None:
                if len(shape) != 3 or shape[2] != channels or min(shape[:2]) < 8:
                    raise ValueError(
                        f'obs_spec[{key!r}] = {shape} must be (H, W, {channels}) '
                        'with H, W >= 8')
            elif len(shape) != 1:
                raise ValueError(
                    f'obs_spec[{key!r}] = {shape} must be a 1-D shape such as (8,); only '
                    "'<camera>_rgb' and '<camera>_depth' keys may be images")
        _positive_ints(self, ('history_len', 'chunk_size', 'd_model', 'n_heads', 'n_layers',
                              'ff_mult', 'n_decoder_layers', 'decoder_ff_mult', 'image_grid',
                              'image_keypoints', 'decoder_memory_tokens'))
        if self.image_encoder not in IMAGE_ENCODERS:
            raise ValueError(f'image_encoder must be one of {IMAGE_ENCODERS}, '
                             f'got {self.image_encoder!r}')
        if self.vector_tokens not in VECTOR_TOKENS:
            raise ValueError(f'vector_tokens must be one of {VECTOR_TOKENS}, '
                             f'got {self.vector_tokens!r}')
        if self.d_model % self.n_heads:
            raise ValueError(
                f'd_model ({self.d_model}) must be divisible by n_heads ({self.n_heads})')
        if (not isinstance(self.decoder_d_model, int) or isinstance(self.decoder_d_model, bool)
                or self.decoder_d_model < 0):
            raise ValueError('decoder_d_model must be 0 (the default width) or a positive int, '
                             f'got {self.decoder_d_model!r}')
        if self.decoder_width % self.n_heads:
            raise ValueError(f'the decoder width ({self.decoder_width}, decoder_d_model) must be '
                             f'divisible by n_heads ({self.n_heads})')
        if not self.image_channels or not all(
                isinstance(c, int) and c > 0 for c in self.image_channels):
            raise ValueError(
                f'image_channels must be positive ints, got {self.image_channels!r}')
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f'dropout must be in [0, 1), got {self.dropout}')
        if self.head not in HEADS:
            raise ValueError(f'head must be one of {HEADS}, got {self.head!r}')
        if self.regression_loss not in REGRESSION_LOSSES:
            raise ValueError(
                f'regression_loss must be one of {REGRESSION_LOSSES}, '
                f'got {self.regression_loss!r}')
        for name in ('control_rate_hz', 'depth_max_m'):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f'{name} must be a positive number, got {value!r}')
        if not self.log_std_min < self.log_std_max:
            raise ValueError(
                f'log_std_min ({self.log_std_min}) must be below log_std_max '
                f'({self.log_std_max})')
        if not self.log_std_min <= self.init_log_std <= self.log_std_max:
            raise ValueError(
                f'init_log_std ({self.init_log_std}) must lie in '
                f'[{self.log_std_min}, {self.log_std_max}]')
        if not isinstance(self.robot, str) or not self.robot:
            raise ValueError(f'robot must name a robot description, got {self.robot!r}')
        if not isinstance(self.extra, dict):
            raise ValueError(f'extra must be a dict, got {self.extra!r}')

    def to_dict(self) -> Dict[str, Any]:
        """Return a JSON-safe dict (tuples become lists) that from_dict reads back."""
        out = asdict(self)
        out['joint_names'] = list(self.joint_names)
        out['obs_spec'] = {k: list(v) for k, v in self.obs_spec.items()}
        out['image_channels'] = list(self.image_channels)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> 'PolicyConfig':
        """Build a config from to_dict's output; unknown or missing fields raise ValueError."""
        if not isinstance(data, Mapping):
            raise ValueError(f'a policy config must be a mapping, got {type(data).__name__}')
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f'unknown policy config fields {unknown}; known: {sorted(known)}')
        missing = [n for n in ('joint_names', 'obs_spec') if n not in data]
        if missing:
            raise ValueError(f'policy config is missing required fields {missing}')
        # A config written before these fields existed describes the architecture of its time:
        # one token per vector key, the decoder as wide as the encoder, one memory token each,
        # the plain CNN image encoder.
        legacy = {'vector_tokens': 'key', 'decoder_memory_tokens': 1, 'image_encoder': 'cnn',
                  'decoder_d_model': data.get('d_model', 0)}
        return cls(**{**legacy, **dict(data)})


def _shape(key: Any, value: Any) -> Tuple[int, ...]:
    if isinstance(value, int):
        value = (value,)
    if not isinstance(value, (list, tuple)) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in value):
        raise ValueError(
            f'obs_spec[{key!r}] must be a shape of positive ints such as (8,), got {value!r}')
    return tuple(value)


def _positive_ints(config: PolicyConfig, names: Tuple[str, ...]) -> None:
    for name in names:
        value = getattr(config, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f'{name} must be a positive int, got {value!r}')
