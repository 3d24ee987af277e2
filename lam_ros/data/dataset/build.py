"""
Training datasets built from rosbag2 episodes: aligned arrays, statistics and a cache.

``build_dataset`` reads every episode of a source (see :mod:`lam_ros.data.bags.reader`),
resamples it at the policy rate (:mod:`lam_ros.data.dataset.rate` says which) with
:mod:`lam_ros.data.dataset.align`, and keeps the episodes that pass validation and did not
fail the task; every other one is listed with its reason, and the option that decides it, in
``Dataset.exclusions``. Each episode has ``obs[key]`` (T, ...) with the env's observation keys
and shapes and ``action`` (T, A).
"""

from dataclasses import asdict, dataclass, field, replace
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

from lam_ros.data.bags.reader import (
    EpisodeError, find_episodes, mapping_for_source, read_episode, TopicMapping)
from lam_ros.data.bags.source import recorded_rate_hz, recorded_robot
from lam_ros.data.dataset.align import BuildOptions, EePoseFn, resample_episode
from lam_ros.data.dataset.rate import choose_rate, detect_command_rate
from lam_ros.data.dataset.stats import compute_stats, Stats
from lam_ros.data.dataset.windows import Windows
from lam_ros.description import image_kind, load_robot
from lam_ros.description.camera import check_image_keys
from lam_ros.description.files import file_mode
import numpy as np
from safetensors import safe_open
from safetensors.numpy import save_file

FORMAT_VERSION = 2  # 2: image keys are '<camera>_rgb' / '<camera>_depth'
_META_KEY = 'lam_ros_dataset'
_SMALL_FILE_BYTES = 1 << 16
PathLike = Union[str, Path]


@dataclass
class Episode:
    """One demonstration on the policy-rate grid."""

    name: str
    """Episode name (its bag directory)."""

    obs: Dict[str, np.ndarray]
    """Observation key -> (T, ...) array, float32 (images uint8)."""

    action: np.ndarray
    """(T, A) float32: the command in effect over the interval after observation t."""

    success: Optional[bool]
    """Task outcome; None when the recording does not say."""

    duration_s: float
    """T / rate_hz."""

    def __len__(self) -> int:
        """Return the number of steps T."""
        return int(self.action.shape[0])


@dataclass
class Exclusion:
    """An episode left out of the dataset, and why."""

    name: str
    """Episode name."""

    reason: str
    """What was wrong, in words a user can act on."""

    kind: str = 'invalid data'
    """Class of reason ('too short', 'failed outcome', 'unreadable', ...), to group reports."""

    option: str = ''
    """The option that decides this exclusion ('' when the data itself must change)."""


def source_fingerprint(source: PathLike, mapping: TopicMapping, options: BuildOptions,
                       ee_pose_fn: Optional[EePoseFn] = None) -> str:
    """
    Return a hash of the episodes' files (names, sizes, times) and of the build settings.

    Only ``dataset.yaml`` and the bag directories count, so a cache kept inside the source
    directory, or a recorder's lock file, does not make the cache stale.
    """
    root = Path(source)
    digest = hashlib.sha256()
    fk_name = None if ee_pose_fn is None else '.'.join(
        (getattr(ee_pose_fn, '__module__', ''), getattr(ee_pose_fn, '__qualname__', '')))
    settings = {'format': FORMAT_VERSION, 'mapping': mapping.to_dict(),
                'options': asdict(options), 'ee_pose_fn': fk_name}
    digest.update(json.dumps(settings, sort_keys=True).encode())
    files = [root / 'dataset.yaml'] if (root / 'dataset.yaml').is_file() else []
    for entry in find_episodes(root):
        if entry.path.is_dir():
            files.extend(sorted(p for p in entry.path.rglob('*') if p.is_file()))
        digest.update(f'{entry.name}|{entry.status}|{entry.success}'.encode())
    for path in files:
        stat = path.stat()
        digest.update(f'{path.relative_to(root)}|{stat.st_size}|{stat.st_mtime_ns}'.encode())
        if stat.st_size <= _SMALL_FILE_BYTES:
            # Small files (dataset.yaml, metadata.yaml) are hashed by content: edits that keep
            # the size and land within the clock's resolution still invalidate the cache.
            digest.update(path.read_bytes())
    return digest.hexdigest()


def check_observation_spec(have: Dict[str, Tuple[int, ...]], want: Dict[str, Any],
                           where: str) -> None:
    """Raise ValueError unless every key of ``want`` is in ``have`` with the same shape."""
    check_image_keys(want, 'the observation spec')
    check_image_keys(have, where)
    problems = []
    for key, shape in want.items():
        shape = tuple(int(d) for d in shape)
        if key not in have:
            problems.append(f'{key!r} is missing')
        elif tuple(have[key]) != shape:
            problems.append(f'{key!r} has shape {tuple(have[key])}, expected {shape}')
    if problems:
        raise ValueError(f'{where} does not match the observation spec: {"; ".join(problems)} '
                         f'(it has {dict(have)}); rebuild it with a mapping that records '
                         'those observations')


@dataclass
class Dataset:
    """Episodes aligned at the policy rate, with their statistics and exclusion report."""

    episodes: List[Episode]
    """The episodes that passed validation."""

    joint_names: List[str]
    """Joint order of ``joint_pos``, ``joint_vel`` and ``action``."""

    rate_hz: float
    """Policy rate of every episode's grid."""

    stats: Stats = field(default_factory=dict)
    """Key (observation keys and ``action``) -> ``mean``/``std``/``min``/``max`` arrays."""

    exclusions: List[Exclusion] = field(default_factory=list)
    """Episodes left out, with reasons."""

    fingerprint: str = ''
    """Hash of the source and build settings the dataset was made from."""

    mapping: Dict[str, Any] = field(default_factory=dict)
    """The topic mapping used, as plain data."""

    robot: str = ''
    """Robot name the recording's ``dataset.yaml`` gives ('' for plain bags)."""

    rate_source: str = ''
    """Where ``rate_hz`` comes from, in words (asked for, dataset.yaml, measured...)."""

    warnings: List[str] = field(default_factory=list)
    """What the user should know about the build (e.g. a rate that differs from the
    recording's); the exclusions are reported separately."""

    include_failures: bool = False
    """Whether failed episodes were kept (by default they are excluded)."""

    def observation_spec(self) -> Dict[str, Tuple[int, ...]]:
        """Return observation key -> per-step shape, as in the env's observation space."""
        if not self.episodes:
            return {}
        return {k: tuple(int(d) for d in v.shape[1:]) for k, v in self.episodes[0].obs.items()}

    @property
    def action_dim(self) -> int:
        """Return A, the length of an action vector."""
        return len(self.joint_names)

    @property
    def num_steps(self) -> int:
        """Return the total number of steps over all episodes."""
        return sum(len(ep) for ep in self.episodes)

    def episode(self, name: str) -> Episode:
        """Return the episode called ``name``."""
        for ep in self.episodes:
            if ep.name == name:
                return ep
        raise KeyError(f'no episode {name!r}; the dataset has {[e.name for e in self.episodes]}')

    def windows(self, history_len: int, chunk_size: int) -> Windows:
        """Return the training windows: an observation history and an action chunk per step."""
        return Windows([ep.obs for ep in self.episodes], [ep.action for ep in self.episodes],
                       history_len, chunk_size)

    def save(self, path: PathLike) -> None:
        """Write the dataset to one safetensors file (arrays) with JSON metadata."""
        tensors: Dict[str, np.ndarray] = {}
        for i, ep in enumerate(self.episodes):
            for key, value in ep.obs.items():
                tensors[f'episode/{i}/obs/{key}'] = np.ascontiguousarray(value)
            tensors[f'episode/{i}/action'] = np.ascontiguousarray(ep.action)
        for key, entry in self.stats.items():
            for stat, value in entry.items():
                tensors[f'stats/{key}/{stat}'] = np.ascontiguousarray(value)
        meta = {
            'format_version': FORMAT_VERSION, 'joint_names': self.joint_names,
            'rate_hz': self.rate_hz, 'fingerprint': self.fingerprint, 'mapping': self.mapping,
            'robot': self.robot, 'rate_source': self.rate_source, 'warnings': self.warnings,
            'include_failures': self.include_failures,
            'observation_spec': {k: list(v) for k, v in self.observation_spec().items()},
            'episodes': [{'name': ep.name, 'success': ep.success, 'duration_s': ep.duration_s}
                         for ep in self.episodes],
            'exclusions': [asdict(e) for e in self.exclusions],
        }
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + '.tmp')
        save_file(tensors, str(tmp), metadata={_META_KEY: json.dumps(meta)})
        os.chmod(tmp, file_mode())  # safetensors creates it private (0600)
        tmp.replace(path)

    @staticmethod
    def read_metadata(path: PathLike) -> Dict[str, Any]:
        """Return a cache file's metadata without loading its arrays."""
        try:
            with safe_open(str(path), framework='numpy') as handle:
                raw = (handle.metadata() or {}).get(_META_KEY)
        except Exception as exc:  # safetensors raises its own error types for foreign files
            raise ValueError(f'{path} is not a lam_ros dataset cache: {exc}') from exc
        if raw is None:
            raise ValueError(f'{path} is a safetensors file but not a lam_ros dataset cache')
        meta = json.loads(raw)
        if meta.get('format_version') != FORMAT_VERSION:
            raise ValueError(f'{path} has dataset format {meta.get("format_version")}; this '
                             f'version reads format {FORMAT_VERSION}: rebuild the cache')
        return meta

    @classmethod
    def load(cls, path: PathLike,
             observation_spec: Optional[Dict[str, Tuple[int, ...]]] = None) -> 'Dataset':
        """
        Load a cache; with ``observation_spec``, insist that it provides those observations.

        Every key of ``observation_spec`` must be in the cache with exactly that per-step
        shape; the cache may hold more keys (a policy observes a subset).
        """
        meta = cls.read_metadata(path)
        spec = {k: tuple(v) for k, v in meta['observation_spec'].items()}
        check_image_keys(spec, str(path))
        if observation_spec is not None:
            check_observation_spec(spec, observation_spec, str(path))
        episodes: List[Episode] = []
        stats: Stats = {}
        with safe_open(str(path), framework='numpy') as handle:
            for i, info in enumerate(meta['episodes']):
                obs = {key: handle.get_tensor(f'episode/{i}/obs/{key}') for key in spec}
                action = handle.get_tensor(f'episode/{i}/action')
                episodes.append(Episode(info['name'], obs, action, info['success'],
                                        float(info['duration_s'])))
            for name in handle.keys():
                if name.startswith('stats/'):
                    _, key, stat = name.split('/')
                    stats.setdefault(key, {})[stat] = handle.get_tensor(name)
        return cls(episodes, list(meta['joint_names']), float(meta['rate_hz']), stats,
                   [Exclusion(**e) for e in meta['exclusions']], meta['fingerprint'],
                   meta['mapping'], str(meta.get('robot') or ''),
                   str(meta.get('rate_source') or ''), list(meta.get('warnings') or []),
                   bool(meta.get('include_failures')))


def _failure() -> EpisodeError:
    return EpisodeError('failed: the recorded outcome is a failure (successful episodes and '
                        'those without an outcome are used)', 'failed outcome',
                        '--include-failures')


def build_dataset(source: PathLike, mapping: Optional[TopicMapping] = None,
                  rate_hz: Optional[float] = None, ee_pose_fn: Optional[EePoseFn] = None,
                  **options: Any) -> Dataset:
    """
    Build a dataset from a recorder directory, a folder of bags or one bag.

    ``mapping`` defaults to the topics and joints in ``dataset.yaml`` (or the robot
    description's); ``rate_hz`` to the recorded control rate, else the rate measured on the
    command topic (see :mod:`lam_ros.data.dataset.rate`); ``options`` are
    :class:`BuildOptions` fields. ``ee_pose_fn`` computes ``ee_pose`` from ``joint_pos`` when
    no end-effector pose topic is recorded.
    """
    mapping = mapping or mapping_for_source(source)
    opts = BuildOptions(rate_hz=rate_hz, **options)
    exclusions: List[Exclusion] = []
    statuses = ('complete', 'interrupted') if opts.include_interrupted else ('complete',)
    raws = []
    for entry in find_episodes(source):
        try:
            if entry.success is False and not opts.include_failures and not entry.problem \
                    and entry.status in statuses:
                raise _failure()  # known from dataset.yaml: no need to read it
            raw = read_episode(entry, mapping, statuses)
            if raw.success is False and not opts.include_failures:
                raise _failure()
            raws.append(raw)
        except EpisodeError as exc:
            exclusions.append(Exclusion(entry.name, str(exc), exc.kind, exc.option))
    rate = choose_rate(rate_hz, recorded_rate_hz(source),
                       detect_command_rate([r.streams['action'].times_ns for r in raws
                                            if 'action' in r.streams]),
                       mapping.command_topic, load_robot().control_rate_hz)
    if not raws:
        rate.warnings = []  # nothing to build: a rate that could not be measured is no news
    opts = replace(opts, rate_hz=rate.rate_hz)
    # The dataset observes every optional topic that any usable episode has.
    optional = ['gripper_width'] + list(mapping.observation_topics())
    obs_keys = [k for k in optional if any(k in r.streams for r in raws)]
    if ee_pose_fn is not None and 'ee_pose' not in obs_keys:
        obs_keys.append('ee_pose')
    episodes: List[Episode] = []
    for raw in raws:
        try:
            obs, action = resample_episode(raw, mapping, obs_keys, opts, ee_pose_fn)
        except EpisodeError as exc:
            exclusions.append(Exclusion(raw.entry.name, str(exc), exc.kind, exc.option))
            continue
        episodes.append(Episode(raw.entry.name, obs, action, raw.success,
                                len(action) / opts.rate_hz))
    _exclude_odd_shapes(episodes, exclusions)
    order = {e.name: i for i, e in enumerate(find_episodes(source))}
    exclusions.sort(key=lambda e: order.get(e.name, len(order)))
    return Dataset(episodes, list(mapping.joint_names), opts.rate_hz,
                   compute_stats((dict(ep.obs, action=ep.action) for ep in episodes),
                                 opts.std_floor), exclusions,
                   source_fingerprint(source, mapping, replace(opts, rate_hz=rate_hz),
                                      ee_pose_fn),
                   mapping.to_dict(), recorded_robot(source), rate.source, rate.warnings,
                   opts.include_failures)


def _exclude_odd_shapes(episodes: List[Episode], exclusions: List[Exclusion]) -> None:
    """Drop episodes whose image sizes differ from the most common one (in place)."""
    for key in sorted({k for ep in episodes for k in ep.obs if image_kind(k)}):
        shapes = [ep.obs[key].shape[1:] for ep in episodes if key in ep.obs]
        if not shapes:
            continue
        common = max(set(shapes), key=shapes.count)
        for ep in list(episodes):
            if ep.obs[key].shape[1:] != common:
                episodes.remove(ep)
                exclusions.append(Exclusion(ep.name, f'{key} frames are {ep.obs[key].shape[1:]}, '
                                                     f'the other episodes {common}',
                                            'image size'))


def load_or_build(source: PathLike, cache: PathLike, mapping: Optional[TopicMapping] = None,
                  rate_hz: Optional[float] = None, ee_pose_fn: Optional[EePoseFn] = None,
                  observation_spec: Optional[Dict[str, Any]] = None,
                  **options: Any) -> Tuple[Dataset, bool]:
    """
    Return ``(dataset, from_cache)``: the cache when it matches the source, else a rebuild.

    A rebuilt dataset replaces the cache file. With ``observation_spec`` the dataset must
    provide those observations (see :meth:`Dataset.load`); its camera frames are resized to
    the spec's image size unless ``image_size`` is given.
    """
    mapping = mapping or mapping_for_source(source)
    if observation_spec is not None and options.get('image_size') is None:
        sizes = {tuple(int(d) for d in shape[:2])
                 for key, shape in observation_spec.items() if image_kind(key)}
        if len(sizes) == 1:
            options['image_size'] = sizes.pop()
    opts = BuildOptions(rate_hz=rate_hz, **options)
    expected = source_fingerprint(source, mapping, opts, ee_pose_fn)
    cache = Path(cache)
    if cache.is_file():
        try:
            fresh = Dataset.read_metadata(cache).get('fingerprint') == expected
        except ValueError:
            fresh = False  # an unreadable or old-format cache is simply rebuilt
        if fresh:
            return Dataset.load(cache, observation_spec), True
    dataset = build_dataset(source, mapping, rate_hz, ee_pose_fn, **options)
    dataset.save(cache)
    if observation_spec is not None:
        check_observation_spec(dataset.observation_spec(), observation_spec, str(source))
    return dataset, False
