"""
Export a trained policy (ONNX, TorchScript, torch.export) and run it through one small API.

The exported graph is ``TransformerPolicy.predict`` itself: observations in real units and the
history mask in, the chunk of joint targets in real units out, with the normalisation inside.
Inputs are ``obs_mask`` (B, H) bool followed by one array per observation key in sorted order,
(B, H, *shape) (``rgb`` uint8, everything else float32); the batch dimension stays free.

An export directory holds ``policy.onnx``, ``policy.ts`` (TorchScript), ``policy.pt2``
(torch.export) and ``export.json``: the checkpoint's config document (joints, observation
spec, rates, metadata), the input names, the SHA-256 of every file and the parity of each
format against the PyTorch model (the largest absolute difference in the chunk, over random
inputs, in rad / m). ``load_backend`` opens a checkpoint or an export directory::

    backend = load_backend('runs/lift/best', backend='onnx', device='cpu')
    chunk = backend.predict({'joint_pos': pos, ...}, obs_mask)   # (B, chunk_size, n_joints)
"""

import hashlib
import json
import os
from typing import Any, Dict, Mapping, Optional, Sequence, Union
import warnings

from lam_ros.policy.checkpoint import (
    CheckpointError, CONFIG_FILE, load_checkpoint, read_checkpoint_config, resolve_device,
    WEIGHTS_FILE)
from lam_ros.policy.config import image_kind, PolicyConfig
from lam_ros.policy.model import TransformerPolicy
import numpy as np
import torch
from torch import nn

FORMATS = {'onnx': 'policy.onnx', 'torchscript': 'policy.ts', 'export': 'policy.pt2'}
BACKENDS = ('torch',) + tuple(FORMATS)
EXPORT_FILE = 'export.json'
EXPORT_FORMAT = 'lam_ros.policy.export'
ONNX_OPSET = 17


class PredictGraph(nn.Module):
    """``model.predict`` as a plain graph: (obs_mask, *obs in sorted key order) -> chunk."""

    def __init__(self, model: TransformerPolicy) -> None:
        """Wrap a model; its config fixes the input order (obs_mask, then sorted keys)."""
        super().__init__()
        self.model = model
        self.keys = input_names(model.config)[1:]

    def forward(self, obs_mask: torch.Tensor, *obs: torch.Tensor) -> torch.Tensor:
        """Return the chunk (B, K, A) in real units; inputs are trusted (checked by callers)."""
        return self.model._predict(dict(zip(self.keys, obs)), obs_mask)


def input_names(config: PolicyConfig) -> list:
    """Return the graph's input names: 'obs_mask' then the observation keys, sorted."""
    return ['obs_mask'] + sorted(config.obs_spec)


def example_inputs(config: PolicyConfig, batch: int = 1, seed: int = 0,
                   stats: Optional[Mapping[str, Any]] = None) -> Dict[str, np.ndarray]:
    """Return random inputs (numpy, by input name); vectors follow stats' mean/std if given."""
    rng = np.random.default_rng(seed)
    out = {'obs_mask': np.ones((batch, config.history_len), dtype=bool)}
    for row, padded in enumerate(rng.integers(0, config.history_len, batch)):
        out['obs_mask'][row, :padded] = False  # steps before an episode start
    for key, shape in config.obs_spec.items():
        full = (batch, config.history_len) + tuple(shape)
        kind = image_kind(key)
        if kind == 'rgb':
            out[key] = rng.integers(0, 256, full, dtype=np.uint8)
        elif kind == 'depth':
            out[key] = rng.uniform(0.0, config.depth_max_m, full).astype(np.float32)
        else:
            mean, std = 0.0, 1.0
            if stats and key in stats:
                mean = np.asarray(stats[key]['mean'], np.float32).reshape(shape)
                std = np.asarray(stats[key]['std'], np.float32).reshape(shape)
            out[key] = (mean + std * rng.standard_normal(full)).astype(np.float32)
    return out


class PolicyBackend:
    """A policy that maps a batch of numpy observations to a numpy chunk, whatever runs it."""

    def __init__(self, config: PolicyConfig, document: Mapping[str, Any], backend: str,
                 device: torch.device, run: Any) -> None:
        """Hold the config, the checkpoint's config document and the callable that predicts."""
        self.config = config
        self.document = dict(document)
        self.backend = backend
        self.device = device
        self._run = run

    @property
    def metadata(self) -> Dict[str, Any]:
        """Return the free-form metadata of the checkpoint: task, training info."""
        return dict(self.document.get('metadata') or {})

    def check_inputs(self, obs: Mapping[str, Any],
                     obs_mask: Optional[Any] = None) -> Dict[str, np.ndarray]:
        """Return the graph inputs by name; raise ValueError naming the first bad one."""
        cfg = self.config
        if not isinstance(obs, Mapping):
            raise ValueError(f'obs must be a dict of arrays, got {type(obs).__name__}')
        missing = [k for k in cfg.obs_spec if k not in obs]
        if missing:
            raise ValueError(f'observation lacks {missing}; the policy observes '
                             f'{dict(cfg.obs_spec)} (key: per-step shape)')
        out, batch = {}, None
        for key in sorted(cfg.obs_spec):
            value = np.asarray(obs[key])
            batch = value.shape[0] if batch is None and value.ndim else batch
            want = (batch, cfg.history_len) + tuple(cfg.obs_spec[key])
            if value.shape != want:
                raise ValueError(f'obs[{key!r}] has shape {value.shape}, expected {want} '
                                 '(batch, history_len, *shape)')
            rgb = image_kind(key) == 'rgb'
            if rgb:
                if value.dtype != np.uint8:
                    raise ValueError(f'obs[{key!r}] must be uint8 (0..255), got {value.dtype}')
            elif not np.issubdtype(value.dtype, np.number) or not np.all(np.isfinite(value)):
                raise ValueError(f'obs[{key!r}] must be finite numbers, got {value.dtype} '
                                 'with NaN/Inf or non-numeric values')
            out[key] = np.ascontiguousarray(value if rgb else value.astype(np.float32))
        mask = np.ones((batch, cfg.history_len), bool) if obs_mask is None \
            else np.asarray(obs_mask)
        if mask.dtype != np.bool_ or mask.shape != (batch, cfg.history_len):
            raise ValueError(f'obs_mask must be a bool array of shape {(batch, cfg.history_len)}'
                             f', got {mask.dtype} {mask.shape}')
        if not mask[:, -1].all():
            raise ValueError('obs_mask must mark the current (last) history step valid')
        return {'obs_mask': mask, **out}

    def predict(self, obs: Mapping[str, Any], obs_mask: Optional[Any] = None) -> np.ndarray:
        """Return the chunk (B, chunk_size, n_joints) float32 in real units for a batch."""
        return self._run(self.check_inputs(obs, obs_mask))


def export_onnx(model: TransformerPolicy, path: str, opset: int = ONNX_OPSET) -> str:
    """Write model.predict as ONNX (free batch dimension); return path."""
    graph, args, names = _prepare(model)
    # The TorchScript-based exporter needs no onnxscript; its deprecation notice is expected.
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DeprecationWarning)
        torch.onnx.export(graph, args, path, dynamo=False, input_names=names,
                          output_names=['chunk'], opset_version=opset,
                          dynamic_axes={n: {0: 'batch'} for n in names + ['chunk']})
    return path


def export_torchscript(model: TransformerPolicy, path: str) -> str:
    """Write model.predict as a traced TorchScript module; return path."""
    graph, args, _ = _prepare(model)
    # The graph has no data-dependent control flow (the parity check proves the trace), so
    # the tracer's warnings about constant shape checks and TorchScript's deprecation notice
    # carry no information here.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter('ignore', DeprecationWarning)
        warnings.simplefilter('ignore', torch.jit.TracerWarning)
        torch.jit.save(torch.jit.trace(graph, args, check_trace=False), path)
    return path


def export_program(model: TransformerPolicy, path: str) -> str:
    """Write model.predict as a torch.export ExportedProgram (.pt2); return path."""
    graph, args, _ = _prepare(model)
    batch = torch.export.Dim('batch', min=1, max=4096)
    # forward(obs_mask, *obs): one spec for the mask, a tuple of specs for the observations.
    shapes = ({0: batch}, tuple({0: batch} for _ in args[1:]))
    program = torch.export.export(graph, args, dynamic_shapes=shapes)
    torch.export.save(program, path)
    return path


def export_policy(checkpoint: str, out_dir: Optional[str] = None,
                  formats: Sequence[str] = tuple(FORMATS), check_batch: int = 4,
                  seeds: int = 3) -> Dict[str, Any]:
    """
    Export a checkpoint in formats into out_dir (default CHECKPOINT/export); return the report.

    Each exported file is reloaded through load_backend and compared with the PyTorch model
    on `seeds` random batches of `check_batch`; the largest absolute error is reported.
    """
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise ValueError(f'formats must be a non-empty subset of {list(FORMATS)}, got '
                         f'{list(formats)}')
    model, _ = load_checkpoint(checkpoint, device='cpu')
    out_dir = out_dir or os.path.join(checkpoint, 'export')
    os.makedirs(out_dir, exist_ok=True)
    writers = {'onnx': export_onnx, 'torchscript': export_torchscript, 'export': export_program}
    report = {'format': EXPORT_FORMAT, 'format_version': 1,
              'checkpoint': read_checkpoint_config(checkpoint),
              'inputs': input_names(model.config), 'output': 'chunk',
              'torch_version': torch.__version__, 'files': {}, 'sha256': {},
              'parity_max_abs_error': {}}
    for name in formats:
        path = writers[name](model, os.path.join(out_dir, FORMATS[name]))
        report['files'][name] = FORMATS[name]
        report['sha256'][name] = _sha256(path)
    _write_json(os.path.join(out_dir, EXPORT_FILE), report)
    stats = model.normalizer.state_stats()
    for name in formats:
        backend = load_backend(out_dir, backend=name)
        errors = []
        for seed in range(seeds):
            inputs = example_inputs(model.config, check_batch, seed, stats)
            reference = model.predict(*_torch_inputs(inputs)).numpy()
            errors.append(float(np.abs(backend.predict(
                {k: v for k, v in inputs.items() if k != 'obs_mask'},
                inputs['obs_mask']) - reference).max()))
        report['parity_max_abs_error'][name] = max(errors)
    _write_json(os.path.join(out_dir, EXPORT_FILE), report)
    return dict(report, out_dir=os.path.abspath(out_dir))


def load_backend(path: str, backend: str = 'torch', device: str = 'cpu',
                 compiled: Union[bool, str] = False, fp16: bool = False,
                 threads: int = 0) -> PolicyBackend:
    """
    Open a checkpoint (any backend) or an export directory (exported backends).

    backend: 'torch' (the checkpoint's weights), 'onnx' (onnxruntime), 'torchscript' or
    'export' (torch.export); a checkpoint directory's exports are looked up in its
    ``export`` sub-directory. Raises CheckpointError when files are missing or damaged.
    With the torch backend, compiled runs the graph through torch.compile (True, or a mode
    such as 'reduce-overhead', which uses CUDA graphs on a GPU) and fp16 runs it under CUDA
    autocast. threads: onnxruntime's intra-op threads (0 = its default; torch's threads are
    set process-wide with torch.set_num_threads).
    """
    if backend not in BACKENDS:
        raise ValueError(f'backend must be one of {list(BACKENDS)}, got {backend!r}')
    if backend != 'torch' and (compiled or fp16):
        raise ValueError(f'compiled and fp16 apply to the torch backend, not {backend!r}')
    path = os.fspath(path)
    try:
        torch_device = resolve_device(device)
    except ValueError as err:
        raise CheckpointError(str(err)) from err
    if fp16 and torch_device.type != 'cuda':
        raise ValueError(f'fp16 needs a CUDA device, got {device!r}')
    if backend == 'torch':
        model, _ = load_checkpoint(path, device=device)
        document = read_checkpoint_config(path)
        graph = PredictGraph(model).eval()
        if compiled:
            graph = torch.compile(graph, mode=None if compiled is True else compiled)
        return PolicyBackend(model.config, document, backend, torch_device,
                             lambda inputs: _run_torch(graph, inputs, torch_device, fp16=fp16))
    export_dir = _export_dir(path)
    report = _read_export(export_dir)
    if backend not in report.get('files', {}):
        raise CheckpointError(f'{export_dir}: no {backend} export here (has '
                              f'{sorted(report.get("files", {}))}); run lam-ros export')
    file = os.path.join(export_dir, report['files'][backend])
    if not os.path.isfile(file) or _sha256(file) != report['sha256'].get(backend):
        raise CheckpointError(f'{file}: missing or does not match the checksum in '
                              f'{EXPORT_FILE} (truncated, corrupted or from another export)')
    try:
        config = PolicyConfig.from_dict(report['checkpoint']['policy_config'])
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f'{export_dir}: invalid policy config in {EXPORT_FILE}: '
                              f'{err}') from err
    names = report['inputs']
    if backend == 'onnx':
        import onnxruntime
        providers = ['CPUExecutionProvider']
        if torch_device.type == 'cuda':
            providers.insert(0, 'CUDAExecutionProvider')
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = int(threads)
        # Idle worker threads sleep instead of spinning: the cores stay free for the control
        # loop (and for anything else) between policy calls.
        options.add_session_config_entry('session.intra_op.allow_spinning', '0')
        session = onnxruntime.InferenceSession(file, options, providers=providers)
        return PolicyBackend(config, report['checkpoint'], backend, torch_device,
                             lambda inputs: session.run(None, inputs)[0])
    if backend == 'torchscript':
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', DeprecationWarning)
            module = torch.jit.load(file, map_location=torch_device).eval()
    else:
        module = torch.export.load(file).module().to(torch_device)
    return PolicyBackend(config, report['checkpoint'], backend, torch_device,
                         lambda inputs: _run_torch(module, inputs, torch_device, names))


def _prepare(model: TransformerPolicy) -> tuple:
    model = model.to('cpu').eval()
    graph = PredictGraph(model).eval()
    inputs = example_inputs(model.config, batch=2)
    names = input_names(model.config)
    return graph, tuple(torch.from_numpy(inputs[n]) for n in names), names


def _torch_inputs(inputs: Mapping[str, np.ndarray]) -> tuple:
    obs = {k: torch.from_numpy(v) for k, v in inputs.items() if k != 'obs_mask'}
    return obs, torch.from_numpy(inputs['obs_mask'])


@torch.no_grad()
def _run_torch(module: Any, inputs: Mapping[str, np.ndarray], device: torch.device,
               names: Optional[Sequence[str]] = None, fp16: bool = False) -> np.ndarray:
    names = names or ['obs_mask'] + sorted(k for k in inputs if k != 'obs_mask')
    args = [torch.from_numpy(inputs[n]).to(device) for n in names]
    with torch.autocast('cuda', dtype=torch.float16, enabled=fp16):
        return module(*args).float().cpu().numpy()


def _export_dir(path: str) -> str:
    if os.path.isfile(path):
        return os.path.dirname(os.path.abspath(path))
    if os.path.isfile(os.path.join(path, EXPORT_FILE)):
        return path
    if os.path.isfile(os.path.join(path, CONFIG_FILE)) and os.path.isfile(
            os.path.join(path, WEIGHTS_FILE)):
        return os.path.join(path, 'export')
    raise CheckpointError(f'{path}: neither an export directory ({EXPORT_FILE}) nor a '
                          'checkpoint; run lam-ros export --checkpoint DIR first')


def _read_export(directory: str) -> Dict[str, Any]:
    try:
        with open(os.path.join(directory, EXPORT_FILE), encoding='utf-8') as f:
            report = json.load(f)
    except OSError as err:
        raise CheckpointError(f'{directory}: no readable {EXPORT_FILE} ({err.strerror}); run '
                              'lam-ros export --checkpoint DIR first') from err
    except ValueError as err:
        raise CheckpointError(f'{directory}: {EXPORT_FILE} is not valid JSON: {err}') from err
    if not isinstance(report, dict) or report.get('format') != EXPORT_FORMAT:
        raise CheckpointError(f'{directory}: {EXPORT_FILE} is not a {EXPORT_FORMAT} file')
    return report


def _sha256(path: str) -> str:
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def _write_json(path: str, data: Union[dict, list]) -> None:
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(data, f, indent=2, allow_nan=False)
        f.write('\n')
