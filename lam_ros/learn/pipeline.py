"""
The whole training pipeline in one call, without ROS.

Stages: ``dataset`` (bags resampled into a cache), ``bc`` (behaviour cloning), ``rl``
(fine-tuning in PyBullet, when ``rl_env_steps > 0``), ``evaluate`` (each stage's best
checkpoint over the same seeded episodes) and ``export`` (the winner, as an ordinary
checkpoint in ``<output_dir>/policy``). ``pipeline.json`` sums the run up.

Progress goes to a callback (stage, step, loss, success rate, ETA); ``should_stop`` asks
the run to stop: the running stage writes its last checkpoint and the run returns with
status ``cancelled``. Running the same configuration again resumes: the cache is reused,
training continues from ``last/`` and evaluations of unchanged checkpoints are kept.

Under torchrun every rank calls :func:`run_pipeline`; rank 0 builds the dataset cache, all
ranks train together (see :mod:`lam_ros.learn.distributed`), then rank 0 alone evaluates and
exports while the other ranks return (their result names no exported checkpoint).
"""

from dataclasses import asdict, dataclass, field
import json
import os
import time
from typing import Any, Callable, Dict, List, Optional

from lam_ros.data.dataset.build import Dataset, load_or_build
from lam_ros.learn import distributed
from lam_ros.learn.bc import train_bc
from lam_ros.learn.evaluate import evaluate_policy
from lam_ros.learn.pipeline_config import PipelineConfig
from lam_ros.learn.rl.ppo import train_rl
from lam_ros.policy import load_checkpoint, PolicyConfig, read_checkpoint_config
from lam_ros.policy import save_checkpoint

STAGES = ('dataset', 'bc', 'rl', 'evaluate', 'export')
CACHE_FILE = 'dataset.safetensors'
EVAL_FILE = 'evaluation.json'
SUMMARY_FILE = 'pipeline.json'
EXPORT_DIR = 'policy'


@dataclass
class Progress:
    """Where the pipeline stands (what the trainer node publishes as diagnostics)."""

    stage: str
    """One of STAGES, then 'done', 'cancelled' or 'failed'."""
    step: int = 0
    """Progress within the stage (optimizer steps, env steps, episodes)."""
    total_steps: int = 0
    """Step count the stage ends at."""
    loss: Optional[float] = None
    """Latest training loss (None outside training)."""
    success_rate: Optional[float] = None
    """Latest success rate (evaluation), None before any."""
    eta_s: Optional[float] = None
    """Estimated seconds to the end of the stage."""
    elapsed_s: float = 0.0
    """Seconds since the pipeline started."""
    message: str = ''
    """One human-readable line."""
    last_checkpoint: str = ''
    """Newest checkpoint written (loadable), '' before the first."""


@dataclass
class PipelineResult:
    """What a pipeline run produced."""

    status: str
    """'done' or 'cancelled'."""
    output_dir: str
    """The run directory."""
    best_checkpoint: str = ''
    """The exported checkpoint (<output_dir>/policy), '' when cancelled before export."""
    last_checkpoint: str = ''
    """Newest checkpoint written by training."""
    chosen: str = ''
    """Stage whose checkpoint was exported ('bc' or 'rl')."""
    evaluations: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    """Stage -> checkpoint, success_rate, success_ci95, mean_return, episodes."""
    summary_path: str = ''
    """Path of pipeline.json."""
    wall_time_s: float = 0.0
    """Duration of this run (s)."""


class Cancelled(Exception):
    """Raised inside a stage when a stop was requested."""


class _Reporter:
    """Turns stage progress into Progress records with an ETA."""

    def __init__(self, callback: Optional[Callable[[Progress], None]], enabled: bool) -> None:
        self.callback = callback if enabled else None
        self.start = time.monotonic()
        self.last_checkpoint = ''
        self._stage, self._t0, self._step0, self._total = '', self.start, 0, 0

    def begin(self, stage: str, total_steps: int = 0, start_step: int = 0) -> None:
        self._stage, self._t0, self._step0 = stage, time.monotonic(), start_step
        self._total = total_steps
        self.update(start_step, message=f'{stage} started')

    def update(self, step: int, loss: Optional[float] = None,
               success_rate: Optional[float] = None, message: str = '',
               stage: Optional[str] = None) -> None:
        if self.callback is None:
            return
        now = time.monotonic()
        done = step - self._step0
        eta = (now - self._t0) / done * max(0, self._total - step) \
            if done > 0 and stage is None else None
        self.callback(Progress(stage or self._stage, step, self._total, loss, success_rate,
                               eta, now - self.start, message, self.last_checkpoint))


def _dataset(config: PipelineConfig, ctx: distributed.DistContext) -> Dataset:
    if os.path.isfile(config.dataset):
        return Dataset.load(config.dataset)
    cache = os.path.join(config.output_dir, CACHE_FILE)
    if ctx.is_main:
        os.makedirs(config.output_dir, exist_ok=True)
        dataset, _ = load_or_build(config.dataset, cache, rate_hz=config.rate_hz)
    distributed.barrier(ctx)
    return dataset if ctx.is_main else Dataset.load(cache)


def _task(config: PipelineConfig) -> str:
    if config.task:
        return config.task
    if os.path.isdir(config.dataset):
        from lam_ros.data.bags.source import read_dataset_yaml
        task = str((read_dataset_yaml(config.dataset) or {}).get('task') or '')
        if task:
            return task
    raise ValueError(f'the dataset {config.dataset!r} does not name its task; set task: lift '
                     'or pick_place')


def policy_config_for(config: PipelineConfig, dataset: Dataset) -> PolicyConfig:
    """Return the policy configuration for this dataset (observations it provides)."""
    from lam_ros.cli.train import choose_obs
    spec = dataset.observation_spec()
    try:
        keys = choose_obs(','.join(config.observations), spec)
    except ValueError as err:
        raise ValueError(f'observations: {err}'.replace('--obs', 'observations')) from err
    return PolicyConfig(joint_names=tuple(dataset.joint_names),
                        obs_spec={k: spec[k] for k in keys}, control_rate_hz=dataset.rate_hz,
                        **config.policy_sizes())


def _evaluate(stage: str, checkpoint: str, config: PipelineConfig, task: str,
              cached: Dict[str, Any], report: _Reporter,
              should_stop: Callable[[], bool]) -> Dict[str, Any]:
    sha = read_checkpoint_config(checkpoint)['weights_sha256']
    old = cached.get(stage) or {}
    if (old.get('weights_sha256'), old.get('episodes'), old.get('seed')) == (
            sha, config.eval_episodes, config.eval_seed):
        return old
    report.begin('evaluate', config.eval_episodes)
    counts = [0, 0]

    def on_episode(record: Dict[str, Any]) -> None:
        counts[0] += int(record['success'])
        counts[1] += 1
        report.update(counts[1], success_rate=counts[0] / counts[1],
                      message=f'{stage} checkpoint: {counts[0]}/{counts[1]} episodes succeeded')
        if should_stop():
            raise Cancelled()

    result = evaluate_policy(checkpoint, task, config.eval_episodes, config.eval_seed,
                             device='cpu', on_episode=on_episode)
    return {'checkpoint': checkpoint, 'weights_sha256': sha, 'episodes': result['episodes'],
            'seed': result['seed'], 'success_rate': result['success_rate'],
            'success_ci95': result['success_ci95'], 'mean_return': result['mean_return']}


def _write_json(path: str, data: Any) -> None:
    tmp = path + '.tmp'
    with open(tmp, 'w', encoding='utf-8') as stream:
        json.dump(data, stream, indent=2)
    os.replace(tmp, path)


def _read_json(path: str) -> Dict[str, Any]:
    try:
        with open(path, encoding='utf-8') as stream:
            return json.load(stream)
    except (OSError, ValueError):
        return {}


def run_pipeline(config: PipelineConfig, on_progress: Optional[Callable[[Progress], None]] = None,
                 should_stop: Optional[Callable[[], bool]] = None) -> PipelineResult:
    """
    Run every stage into config.output_dir; return the result (also in pipeline.json).

    Bad input (paths, dataset without the observations asked for, unknown task) raises
    ValueError before anything is written.
    """
    config.check_paths()
    task = _task(config)
    stop = should_stop or (lambda: False)
    ctx = distributed.setup(config.device)
    report = _Reporter(on_progress, ctx.is_main)
    out = config.output_dir
    result = PipelineResult('cancelled', out)
    stages: Dict[str, Any] = {}
    try:
        report.begin('dataset')
        dataset = _dataset(config, ctx)
        policy_config = policy_config_for(config, dataset)
        stages['dataset'] = {'episodes': len(dataset.episodes), 'steps': dataset.num_steps,
                             'rate_hz': dataset.rate_hz, 'fingerprint': dataset.fingerprint}
        report.update(0, message=f'{len(dataset.episodes)} episodes, {dataset.num_steps} steps')
        if stop():
            raise Cancelled()

        report.begin('bc', config.bc_steps)
        bc_dir = os.path.join(out, 'bc')

        def bc_log(row: Dict[str, Any]) -> None:
            if os.path.isfile(os.path.join(bc_dir, 'last', 'config.json')):
                report.last_checkpoint = os.path.join(bc_dir, 'last')
            report.update(row['step'], loss=row['loss'],
                          message=f'bc step {row["step"]}/{config.bc_steps} loss '
                                  f'{row["loss"]:.4f}')

        bc = train_bc(dataset, policy_config, config.bc_config(), bc_dir, task=task,
                      should_stop=stop, on_log=bc_log)
        result.last_checkpoint = report.last_checkpoint = bc.last_checkpoint
        stages['bc'] = {'steps': bc.steps, 'best_val_loss': bc.best_val_loss,
                        'final_train_loss': bc.final_train_loss,
                        'checkpoint': bc.best_checkpoint, 'curves': bc.curves_png}
        if bc.steps < config.bc_steps:
            raise Cancelled()
        candidates = {'bc': bc.best_checkpoint}
        if config.rl_env_steps:
            report.begin('rl', config.rl_env_steps)
            rl = train_rl(bc.best_checkpoint, os.path.join(out, 'rl'), config.rl_config(),
                          task=task, demos=dataset, should_stop=stop,
                          on_log=lambda row: _rl_log(row, report, out))
            result.last_checkpoint = report.last_checkpoint = rl.last_checkpoint
            stages['rl'] = {'env_steps': rl.env_steps, 'checkpoint': rl.best_checkpoint,
                            'initial_success_rate': rl.initial_success_rate,
                            'best_success_rate': rl.best_success_rate,
                            'steps_per_s': rl.steps_per_s, 'curves': rl.curves_png}
            if rl.interrupted:
                raise Cancelled()
            candidates['rl'] = rl.best_checkpoint

        if not ctx.is_main:  # rank 0 alone evaluates and exports; the others are done
            return PipelineResult('done', out, last_checkpoint=result.last_checkpoint,
                                  wall_time_s=time.monotonic() - report.start)
        cached = _read_json(os.path.join(out, EVAL_FILE))
        for stage, checkpoint in candidates.items():
            result.evaluations[stage] = _evaluate(stage, checkpoint, config, task, cached,
                                                  report, stop)
            _write_json(os.path.join(out, EVAL_FILE), dict(cached, **result.evaluations))
        # Strictly better replaces: on a tie the policy closer to the demonstrations wins.
        result.chosen = max(result.evaluations,
                            key=lambda s: (result.evaluations[s]['success_rate'],
                                           -list(candidates).index(s)))
        report.begin('export', 1)
        model, meta = load_checkpoint(candidates[result.chosen])
        meta = dict(meta, pipeline={'stage': result.chosen,
                                    'evaluation': result.evaluations[result.chosen]})
        result.best_checkpoint = save_checkpoint(os.path.join(out, EXPORT_DIR), model, meta)
        result.status = 'done'
    except Cancelled:
        result.status = 'cancelled'
    result.wall_time_s = time.monotonic() - report.start
    if ctx.is_main:
        os.makedirs(out, exist_ok=True)
        result.summary_path = os.path.join(out, SUMMARY_FILE)
        _write_json(result.summary_path, dict(asdict(result), task=task, stages=stages,
                                              world_size=ctx.world_size))
        rate = result.evaluations.get(result.chosen, {}).get('success_rate')
        report.update(1 if result.status == 'done' else 0, success_rate=rate,
                      stage=result.status,
                      message=(f'exported the {result.chosen} checkpoint ({100 * rate:.0f} % '
                               f'success) to {result.best_checkpoint}') if rate is not None
                      else f'cancelled; last checkpoint {result.last_checkpoint or "none"}')
    return result


def _rl_log(row: Dict[str, Any], report: _Reporter, out: str) -> None:
    last = os.path.join(out, 'rl', 'last')
    if os.path.isfile(os.path.join(last, 'config.json')):
        report.last_checkpoint = last
    rate = row.get('eval_success_rate', row.get('train_success_rate'))
    kind = 'validation' if 'eval_success_rate' in row else 'training'
    report.update(int(row['env_steps']), loss=row.get('policy_loss'), success_rate=rate,
                  message=f'rl env step {row["env_steps"]}' + (
                      f', {kind} success {100 * rate:.0f} %' if rate is not None else ''))


def stage_names(config: PipelineConfig) -> List[str]:
    """Return the stages this configuration runs, in order."""
    return [s for s in STAGES if s != 'rl' or config.rl_env_steps]
