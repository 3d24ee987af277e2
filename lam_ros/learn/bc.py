"""
Behaviour cloning: train a TransformerPolicy on demonstration windows.

The loop is deliberately plain: random windows (observation history + action chunk) from
the training episodes, the policy's own loss (L1/MSE or Gaussian NLL on normalised actions),
AdamW with a linear warmup and a cosine decay, gradient clipping. Every ``eval_interval``
steps the validation loss is measured on held-out episodes, ``last/`` is written (with the
optimizer state, so that running the same command again resumes there) and ``best/`` keeps
the checkpoint with the lowest validation loss.

Under torchrun every rank draws its own share of each step's batch (``batch_size`` windows
per rank) and DDP averages the gradients; rank 0 alone validates and writes run files.
"""

from dataclasses import asdict, dataclass, field
import math
import os
import time
from typing import Any, Callable, Dict, List, Optional

from lam_ros.data.dataset.build import Dataset
from lam_ros.data.dataset.windows import Windows
from lam_ros.learn import distributed, run_files
from lam_ros.learn.augment import augment_images
from lam_ros.learn.demos import (
    batch_to_torch, check_compatible, episode_windows, split_episodes)
from lam_ros.policy import (
    CheckpointError, compute_stats, load_checkpoint, PolicyConfig, resolve_device, save_checkpoint,
    TransformerPolicy)
from lam_ros.policy.config import image_kind
import numpy as np
import torch
from tqdm import tqdm


@dataclass
class BCConfig:
    """Hyper-parameters of one behaviour-cloning run."""

    steps: int = 2000
    """Optimizer steps in total (a resumed run continues up to this number)."""
    batch_size: int = 64
    """Windows per optimizer step (per rank under torchrun)."""
    lr: float = 1e-3
    """Peak learning rate of AdamW."""
    weight_decay: float = 1e-4
    """AdamW weight decay (decoupled)."""
    warmup_steps: int = 200
    """Steps of linear learning-rate warmup from 0 to lr."""
    min_lr_fraction: float = 0.05
    """The cosine decay ends at lr * min_lr_fraction on the last step."""
    grad_clip: float = 1.0
    """Maximum global gradient norm; 0 disables clipping."""
    obs_noise: float = 0.0
    """Std of Gaussian noise added to vector observations during training, in units of each
    dimension's dataset std (makes the policy tolerant of its own small drift)."""
    image_shift: int = 4
    """Random shift of training images by up to this many pixels in x and y (augment.py);
    0 disables it. Validation images are never shifted."""
    hold_last_action: bool = True
    """Chunk steps past an episode's end count in the loss as its last command held (what a
    position controller does once the episode is over) instead of being masked out. Recorded
    episodes stop at success, e.g. right after the gripper opens; holding the last command
    teaches the policy to keep such a final release rather than averaging it away."""
    val_fraction: float = 0.1
    """Fraction of episodes (not windows) held out for validation; 0 disables validation."""
    eval_interval: int = 500
    """Steps between validation, ``last/`` and ``best/`` checkpoints."""
    log_interval: int = 50
    """Steps between rows of metrics.csv."""
    max_val_windows: int = 4096
    """Validation uses at most this many windows (a fixed, evenly spaced subset)."""
    seed: int = 0
    """Seed of the episode split, batch sampling, initialisation and dropout."""
    device: str = 'auto'
    """'auto' (cuda when present), 'cpu', 'cuda' or 'cuda:N'."""
    num_threads: int = 0
    """torch CPU threads; 0 keeps torch's default."""
    progress: bool = True
    """Show a tqdm progress bar."""

    def __post_init__(self) -> None:
        """Validate every field, naming the one that is wrong."""
        for name in ('steps', 'batch_size', 'eval_interval', 'log_interval', 'max_val_windows'):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f'BCConfig.{name} must be a positive int, got {value!r}')
        for name in ('warmup_steps', 'num_threads', 'seed', 'image_shift'):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f'BCConfig.{name} must be an int >= 0, got {value!r}')
        for name in ('lr', 'weight_decay', 'grad_clip', 'obs_noise', 'min_lr_fraction'):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(f'BCConfig.{name} must be a finite number >= 0, got {value!r}')
        if self.lr <= 0:
            raise ValueError(f'BCConfig.lr must be > 0, got {self.lr}')
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f'BCConfig.val_fraction must be in [0, 1), got {self.val_fraction}')
        resolve_device(self.device)

    def lr_at(self, step: int) -> float:
        """Learning rate of (0-based) step: linear warmup, then cosine decay."""
        if step < self.warmup_steps:
            return self.lr * (step + 1) / self.warmup_steps
        span = max(1, self.steps - self.warmup_steps - 1)
        progress = min(1.0, (step - self.warmup_steps) / span)
        floor = self.lr * self.min_lr_fraction
        return floor + (self.lr - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


@dataclass
class BCResult:
    """What a training run produced."""

    out_dir: str
    """The run directory."""
    last_checkpoint: str
    """Path of ``last/`` (the final weights)."""
    best_checkpoint: str
    """Path of ``best/`` (lowest validation loss; the final weights without validation)."""
    steps: int
    """Optimizer steps done in total, over all resumed sessions."""
    resumed_from: int
    """Step this session started at (0 for a fresh run)."""
    best_val_loss: Optional[float]
    """Lowest validation loss seen, None without validation."""
    final_train_loss: float
    """Mean training loss over the last logging interval."""
    wall_time_s: float
    """Training time of this session (s), checkpoint writing included."""
    num_parameters: int
    """Parameters of the policy."""
    train_episodes: List[str] = field(default_factory=list)
    """Episodes trained on."""
    val_episodes: List[str] = field(default_factory=list)
    """Episodes held out for validation."""
    metrics_csv: str = ''
    """Path of metrics.csv."""
    curves_png: str = ''
    """Path of the loss-curve plot (empty when nothing was logged)."""
    policy: Optional[TransformerPolicy] = field(default=None, repr=False, compare=False)
    """The trained policy in memory (this rank's replica)."""


def _add_noise(model: TransformerPolicy, obs: Dict[str, torch.Tensor], scale: float,
               generator: torch.Generator) -> None:
    for key in model.config.lowdim_keys:
        std = model.normalizer.stats[key].std
        noise = torch.randn(obs[key].shape, generator=generator, device=obs[key].device)
        obs[key] = obs[key] + noise * std * scale


@torch.no_grad()
def validation_loss(model: TransformerPolicy, windows: Windows, batch_size: int,
                    max_windows: int, device: torch.device,
                    hold_last_action: bool = True) -> Dict[str, float]:
    """Mean loss terms over (a fixed subset of) the validation windows, in eval mode."""
    was_training = model.training
    model.eval()
    index = np.unique(np.linspace(0, len(windows) - 1, min(max_windows, len(windows)))
                      .astype(np.int64))
    totals: Dict[str, float] = {}
    for start in range(0, len(index), batch_size):
        part = index[start:start + batch_size]
        out = model.loss(*batch_to_torch(windows.batch(part), device, hold_last_action))
        for key, value in out.items():
            totals[key] = totals.get(key, 0.0) + float(value) * len(part)
    model.train(was_training)
    return {k: v / len(index) for k, v in totals.items()}


def _resume(last_dir: str, model: TransformerPolicy, fingerprint: str) -> tuple:
    """Load weights, step and optimizer state from last/ when it belongs to this run."""
    if not os.path.isdir(last_dir):
        return 0, None, None
    try:
        saved, meta = load_checkpoint(last_dir)
    except CheckpointError as err:
        raise ValueError(f'cannot resume from {last_dir}: {err}; remove it or choose a new '
                         'output directory') from err
    if saved.config.to_dict() != model.config.to_dict():
        raise ValueError(f'{last_dir} was trained with another policy config; use a new output '
                         'directory for a different model (or the same options to resume)')
    if meta.get('dataset_fingerprint') != fingerprint:
        raise ValueError(f'{last_dir} was trained on another dataset (fingerprint '
                         f'{meta.get("dataset_fingerprint")!r}); use a new output directory')
    model.load_state_dict(saved.state_dict())
    step = int(meta.get('step', 0))
    state = run_files.load_training_state(last_dir)
    if state is not None and state[1].get('step') != step:
        state = None  # written by an interrupted save: restart the optimizer moments
    return step, (state[0] if state else None), meta.get('best_val_loss')


def train_bc(dataset: Dataset, policy_config: PolicyConfig, bc_config: Optional[BCConfig] = None,
             out_dir: str = 'runs/bc', task: Optional[str] = None,
             on_log: Optional[Callable[[Dict[str, Any]], None]] = None,
             should_stop: Optional[Callable[[], bool]] = None) -> BCResult:
    """
    Train a policy by behaviour cloning into out_dir (resuming from out_dir/last if there).

    on_log receives every metrics row (rank 0). When should_stop() turns true, last/ is
    written at the current step and the run returns early (running again resumes it).
    """
    cfg = bc_config or BCConfig()
    check_compatible(dataset, policy_config)
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    ctx = distributed.setup(cfg.device)
    device = ctx.device
    os.makedirs(out_dir, exist_ok=True)
    last_dir, best_dir = os.path.join(out_dir, 'last'), os.path.join(out_dir, 'best')
    train_eps, val_eps = split_episodes(dataset, cfg.val_fraction, cfg.seed)
    train_w = episode_windows(train_eps, policy_config)
    val_w = episode_windows(val_eps, policy_config) if val_eps else None

    torch.manual_seed(cfg.seed)
    model = TransformerPolicy(policy_config)
    arrays = {k: np.concatenate([ep.obs[k] for ep in train_eps]).astype(np.float32)
              for k in policy_config.obs_spec if image_kind(k) is None}
    arrays['action'] = np.concatenate([ep.action for ep in train_eps])
    model.normalizer.fit(compute_stats(arrays))
    step, opt_state, best = _resume(last_dir, model, dataset.fingerprint)
    if distributed.broadcast(step, ctx) != step:
        raise ValueError(f'rank {ctx.rank} sees {last_dir} at another step than rank 0: the '
                         'output directory must be one shared directory for every rank')
    model.to(device).train()
    net = distributed.data_parallel(model, ctx, 'loss')  # averages gradients across ranks
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    if opt_state is not None:
        optimizer.load_state_dict(opt_state)
    resumed_from = step
    meta_base = {'task': task, 'joint_names': list(policy_config.joint_names),
                 'control_rate_hz': policy_config.control_rate_hz,
                 'dataset_fingerprint': dataset.fingerprint,
                 'train_episodes': [ep.name for ep in train_eps],
                 'val_episodes': [ep.name for ep in val_eps], 'bc_config': asdict(cfg)}
    log = run_files.MetricsLog(out_dir, resume_step=step) if ctx.is_main else None
    seed = distributed.rank_seed(cfg.seed, ctx)  # own dropout and noise on every rank
    noise_gen = torch.Generator(device=device).manual_seed(seed + 7919 * step)
    torch.manual_seed(seed + step)
    start = time.monotonic()
    running: Dict[str, float] = {}
    count = 0
    last_train = float('nan')
    bar = tqdm(total=cfg.steps, initial=step, desc='bc', unit='step',
               disable=not (cfg.progress and ctx.is_main), dynamic_ncols=True)
    try:
        while step < cfg.steps:
            lr = cfg.lr_at(step)
            for group in optimizer.param_groups:
                group['lr'] = lr
            # Indices depend only on (seed, step), so a resumed run sees the same batches;
            # each rank takes its own slice of the step's global batch.
            rng = np.random.default_rng([cfg.seed, step])
            index = rng.integers(0, len(train_w), cfg.batch_size * ctx.world_size)
            index = index[ctx.rank * cfg.batch_size:(ctx.rank + 1) * cfg.batch_size]
            batch = batch_to_torch(train_w.batch(index), device, cfg.hold_last_action)
            if cfg.obs_noise > 0:
                _add_noise(model, batch[0], cfg.obs_noise, noise_gen)
            if cfg.image_shift > 0:
                augment_images(batch[0], policy_config.image_keys, cfg.image_shift, noise_gen)
            out = net(*batch)
            optimizer.zero_grad(set_to_none=True)
            out['loss'].backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(
                model.parameters(), cfg.grad_clip if cfg.grad_clip > 0 else float('inf'))
            optimizer.step()
            step += 1
            count += 1
            for key in ('loss', 'l1', 'mse'):
                running[key] = running.get(key, 0.0) + float(out[key].detach())
            running['grad_norm'] = running.get('grad_norm', 0.0) + float(grad_norm)
            bar.update(1)
            stop = distributed.any_rank(bool(should_stop and should_stop()), ctx)
            evaluate = step % cfg.eval_interval == 0 or step == cfg.steps or stop
            if step % cfg.log_interval == 0 or evaluate:
                row: Dict[str, Any] = distributed.mean_over_ranks(
                    {k: v / count for k, v in running.items()}, ctx)
                last_train = row['loss']
                row.update(step=step, lr=lr, elapsed_s=time.monotonic() - start)
                running, count = {}, 0
                if not ctx.is_main:
                    if stop:
                        break
                    continue
                if evaluate and val_w is not None:
                    val = validation_loss(model, val_w, cfg.batch_size, cfg.max_val_windows,
                                          device, cfg.hold_last_action)
                    row.update(val_loss=val['loss'], val_l1=val['l1'], val_mse=val['mse'])
                # The row goes first: a crash while saving resumes from the previous
                # checkpoint, and the rows after it are dropped then.
                log.write(row)
                if evaluate:
                    best = _checkpoint(model, optimizer, step, best, row, meta_base,
                                       last_dir, best_dir)
                if on_log is not None:
                    on_log(row)
                bar.set_postfix(loss=f'{row["loss"]:.4f}', **(
                    {'val': f'{row["val_loss"]:.4f}'} if row.get('val_loss') is not None
                    else {}))
                if stop:
                    break
    finally:
        bar.close()
        if log is not None:
            log.close()
    wall = time.monotonic() - start
    metrics = os.path.join(out_dir, run_files.METRICS_FILE)
    png = run_files.plot_curves(metrics, os.path.join(out_dir, run_files.PLOT_FILE),
                                title=f'behaviour cloning ({policy_config.head} head)') \
        if ctx.is_main else None
    best = distributed.broadcast(best, ctx)
    distributed.barrier(ctx)  # rank 0's checkpoints exist when any rank returns
    return BCResult(out_dir, last_dir, best_dir, step, resumed_from, best, last_train, wall,
                    model.num_parameters(), [ep.name for ep in train_eps],
                    [ep.name for ep in val_eps], metrics, png or '', model)


def _checkpoint(model: TransformerPolicy, optimizer: torch.optim.Optimizer, step: int,
                best: Optional[float], row: Dict[str, Any], meta_base: Dict[str, Any],
                last_dir: str, best_dir: str) -> Optional[float]:
    """Write last/ (+ optimizer state) and best/ when the val loss improved; return the best."""
    val_loss = row.get('val_loss')
    improved = val_loss is None or best is None or val_loss < best
    new_best = val_loss if improved else best
    meta = dict(meta_base, step=step, val_loss=val_loss, train_loss=row['loss'],
                best_val_loss=new_best)
    if improved:
        save_checkpoint(best_dir, model, meta)
    save_checkpoint(last_dir, model, meta)
    run_files.save_training_state(last_dir, optimizer, {'step': step})
    return new_best
