"""
Environments for RL and evaluation: any gymnasium env that follows the task contract.

The contract (docs/env_contract.md): a callable with no arguments returns a gymnasium env
whose observation is a dict holding the policy's observation keys with the policy's shapes,
whose action is the vector of joint-position targets in the policy's joint order, and whose
``info`` carries ``is_success`` on every step. ``env_factory('package.module:factory')``
turns the command-line form into that callable.

Every env built here is wrapped in :class:`GatedEnv`, so each action it receives has passed
through :class:`lam_ros.control.gate.CommandGate`, as on the robot.
"""

import functools
import importlib
import multiprocessing
import signal
from typing import Any, Callable, Dict, Optional, Sequence, Tuple, Union

import gymnasium as gym
from lam_ros.control.gate import CommandGate, GateConfig
from lam_ros.control.limits import JointLimits
import numpy as np

EnvFactory = Callable[[], gym.Env]


class EnvSpecError(ValueError):
    """An env factory cannot be resolved, or its env breaks the task contract."""


def env_factory(spec: Union[str, EnvFactory]) -> EnvFactory:
    """Resolve 'package.module:factory' (or pass a callable through); EnvSpecError if bad."""
    if callable(spec):
        return spec
    if not isinstance(spec, str) or spec.count(':') != 1 or not all(spec.split(':')):
        raise EnvSpecError(f'--env {spec!r}: expected package.module:factory, e.g. '
                           'my_pkg.envs:make_env')
    module_name, attr = spec.split(':')
    try:
        module = importlib.import_module(module_name)
    except Exception as err:  # an import error inside the user's module is reported too
        raise EnvSpecError(f'--env {spec!r}: cannot import {module_name!r}: '
                           f'{type(err).__name__}: {err}') from err
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise EnvSpecError(f'--env {spec!r}: module {module_name!r} has no callable {attr!r}')
    return factory


def task_factory(task: str, control_rate_hz: float, robot: str = '',
                 **overrides: Any) -> EnvFactory:
    """
    Return a factory of lam_ros's own PyBullet task for ``robot`` at the policy's rate.

    ``overrides`` are further TaskConfig fields, e.g. the camera an image policy observes.
    """
    from lam_ros.sim import make_env
    from lam_ros.description import TASK_NAMES as TASKS
    if task not in TASKS:
        raise EnvSpecError(f'unknown task {task!r}; expected one of {TASKS} or --env '
                           'package.module:factory')
    return functools.partial(make_env, task, control_rate_hz=control_rate_hz, robot=robot,
                             **overrides)


def env_limits(env: gym.Env, joint_names: Sequence[str]) -> JointLimits:
    """Joint limits the gate enforces: env.unwrapped.joint_limits, else the Panda's URDF."""
    limits = getattr(env.unwrapped, 'joint_limits', None)
    if isinstance(limits, JointLimits):
        return limits.select(joint_names)
    from lam_ros.sim.robot import ALL_JOINT_NAMES, joint_limits
    unknown = [n for n in joint_names if n not in ALL_JOINT_NAMES]
    if unknown:
        raise EnvSpecError(f'the env has no joint_limits attribute (a JointLimits) and the '
                           f'policy commands joints {unknown} that the Panda URDF lacks; give '
                           'the env a joint_limits attribute')
    return joint_limits(tuple(joint_names))


def check_contract(env: gym.Env, joint_names: Sequence[str],
                   obs_spec: Dict[str, Tuple[int, ...]]) -> None:
    """Raise EnvSpecError naming what the env lacks for a policy with this obs spec."""
    space = env.observation_space
    if not isinstance(space, gym.spaces.Dict):
        raise EnvSpecError(f'the env observation space must be a gymnasium Dict, got '
                           f'{type(space).__name__}')
    problems = [f'{k!r} missing' for k in obs_spec if k not in space.spaces]
    problems += [f'{k!r} has shape {space[k].shape}, the policy needs {tuple(s)}'
                 for k, s in obs_spec.items()
                 if k in space.spaces and tuple(space[k].shape) != tuple(s)]
    if problems:
        raise EnvSpecError(f"the env does not fit the policy's observations: "
                           f'{"; ".join(problems)} (it has {sorted(space.spaces)})')
    joint_pos = space.spaces.get('joint_pos')
    if joint_pos is None or tuple(joint_pos.shape) != (len(joint_names),):
        raise EnvSpecError(f'the env must observe joint_pos ({len(joint_names)},), the measured '
                           'positions of the commanded joints that the command gate reads')
    shape = getattr(env.action_space, 'shape', None)
    if shape != (len(joint_names),):
        raise EnvSpecError(f'the env action space has shape {shape}; the policy commands '
                           f'{len(joint_names)} joints {list(joint_names)}')


def open_env(factory: Union[str, EnvFactory], joint_names: Sequence[str],
             obs_spec: Dict[str, Tuple[int, ...]]) -> gym.Env:
    """Build one env from a factory or 'module:factory' and check it against the contract."""
    env = env_factory(factory)()
    if not isinstance(env, gym.Env):
        raise EnvSpecError(f'the env factory returned {type(env).__name__}, not a '
                           'gymnasium.Env')
    try:
        check_contract(env, joint_names, obs_spec)
    except EnvSpecError:
        env.close()
        raise
    return env


class GatedEnv(gym.Wrapper):
    """
    Keep the policy's observation keys and pass every action through a CommandGate.

    The gate reads the measured joint positions from ``observation['joint_pos']`` (the
    robot's /joint_states); its clock is the control step count times the control period.
    """

    def __init__(self, env: gym.Env, joint_names: Sequence[str],
                 obs_spec: Dict[str, Tuple[int, ...]], gate_config: Optional[GateConfig] = None,
                 control_rate_hz: float = 20.0) -> None:
        """Check the contract and build the gate from the env's joint limits."""
        super().__init__(env)
        check_contract(env, joint_names, obs_spec)
        self._keys = tuple(obs_spec)
        self.observation_space = gym.spaces.Dict({k: env.observation_space[k]
                                                  for k in self._keys})
        self.gate = CommandGate(env_limits(env, joint_names), control_rate_hz, gate_config)
        self._dt = 1.0 / control_rate_hz
        self._t = 0.0

    def _observe(self, obs: Dict[str, Any]) -> Dict[str, Any]:
        if not self.gate.update_state(self._t, obs['joint_pos']):
            raise EnvSpecError(f'the env reported a joint state the gate rejects: '
                               f'{self.gate.reason}')
        return {k: obs[k] for k in self._keys}

    def reset(self, **kwargs: Any) -> Tuple[Dict[str, Any], Dict[str, Any]]:
        """Reset the env and re-anchor the gate on the measured state."""
        obs, info = self.env.reset(**kwargs)
        self._t = 0.0
        self.gate.resync()
        return self._observe(obs), info

    def step(self, action: Any) -> Tuple[Dict[str, Any], float, bool, bool, Dict[str, Any]]:
        """Gate the target and apply the resulting command for one control period."""
        command = self.gate.step(self._t, action)
        obs, reward, terminated, truncated, info = self.env.step(command.astype(np.float32))
        self._t += self._dt
        return self._observe(obs), reward, terminated, truncated, info


def make_gated(factory: EnvFactory, joint_names: Sequence[str],
               obs_spec: Dict[str, Tuple[int, ...]], control_rate_hz: float,
               gate_config: Optional[GateConfig] = None) -> gym.Env:
    """Build one env from the factory and wrap it in a GatedEnv (runs in a worker)."""
    env = open_env(factory, joint_names, obs_spec)
    return GatedEnv(env, joint_names, obs_spec, gate_config, control_rate_hz)


def _worker_env(*args: Any) -> gym.Env:
    """Build a gated env; in a worker process, leave Ctrl-C to the main process."""
    # AsyncVectorEnv also calls this once in the main process, to read the spaces.
    if multiprocessing.parent_process() is not None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    return make_gated(*args)


def make_vector_env(factory: EnvFactory, num_envs: int, joint_names: Sequence[str],
                    obs_spec: Dict[str, Tuple[int, ...]], control_rate_hz: float,
                    vector: str = 'async', autoreset: str = 'same_step',
                    gate_config: Optional[GateConfig] = None) -> gym.vector.VectorEnv:
    """
    Check the contract in this process, then start num_envs gated envs.

    autoreset 'same_step': an episode that ends is reset in the same step (the observation
    returned is the new episode's first; the last info is in info['final_info']).
    'disabled': the caller resets finished envs (reset with options={'reset_mask': ...}).
    """
    make_gated(factory, joint_names, obs_spec, control_rate_hz, gate_config).close()
    # A Ctrl-C in a terminal reaches every process of the group: the workers ignore it, so
    # that the main process can save its state and close them in order.
    fns = [functools.partial(_worker_env if vector == 'async' else make_gated, factory,
                             tuple(joint_names), dict(obs_spec), control_rate_hz, gate_config)
           for _ in range(num_envs)]
    mode = {'same_step': gym.vector.AutoresetMode.SAME_STEP,
            'disabled': gym.vector.AutoresetMode.DISABLED}[autoreset]
    if vector == 'async':
        return gym.vector.AsyncVectorEnv(fns, autoreset_mode=mode)
    return gym.vector.SyncVectorEnv(fns, autoreset_mode=mode)
