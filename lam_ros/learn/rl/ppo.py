"""
PPO fine-tuning of a behaviour-cloned TransformerPolicy, readable top to bottom.

1. Load the BC checkpoint as an actor-critic (agent.py) and keep a frozen copy of it.
2. Start num_envs gated envs in worker processes (envs.py).
3. Repeat: collect rollout_steps control steps in every env, sampling a chunk per step and
   sending the temporal ensemble of chunks (rollout.py); compute GAE advantages; run a few
   epochs of minibatch updates of the clipped objective plus the stay-close terms:
   KL(policy || BC policy) on rollout observations and the BC loss on demonstration windows,
   both annealed (losses.py). The first critic_warmup_updates train only the value head.
   With self-imitation on (imitation_capacity > 0), each update ends with imitation_steps
   of the BC loss on the demonstrations plus the successful rollout episodes (imitation.py).
4. Every eval_interval env steps evaluate the mean policy on fixed validation seeds, write
   last/ (resumable) and keep the best evaluated checkpoint in best/. The BC policy itself
   is evaluated first, so best/ is never worse than it on those seeds.

Rewards: success_reward on the step where info['is_success'] turns true, plus
env_reward_scale times the env's own reward. Episodes that end (success, failure, time
limit) are not bootstrapped.
"""

from dataclasses import asdict
import os
import time
from typing import Any, Callable, Dict, List, Optional, Union

from lam_ros.learn import distributed
from lam_ros.learn.demos import check_compatible
from lam_ros.learn.evaluate import camera_overrides
from lam_ros.learn.rl import losses, run_state
from lam_ros.learn.rl.agent import chunk_normal, load_actor_critic
from lam_ros.learn.rl.buffer import Buffer, demo_batch, demo_windows, minibatches, select
from lam_ros.learn.rl.config import RLConfig, ROLLOUT_SEED_START, VALIDATION_SEED_START
from lam_ros.learn.rl.envs import (
    env_factory, EnvFactory, make_gated, make_vector_env, task_factory)
from lam_ros.learn.rl.imitation import demo_episodes, SuccessArchive
from lam_ros.learn.rl.replay import SceneReplay
from lam_ros.learn.rl.rollout import BatchRunner, evaluate_vector, step_success, to_torch
from lam_ros.learn.rl.run_state import RLResult
from lam_ros.policy import save_checkpoint, TransformerPolicy
import numpy as np
import torch
from torch import nn
from tqdm import tqdm


class Objective(nn.Module):
    """The actor's loss terms of one minibatch in one forward (so DDP can average gradients)."""

    def __init__(self, policy: TransformerPolicy) -> None:
        """Wrap the policy."""
        super().__init__()
        self.policy = policy

    def forward(self, mb: Dict[str, Any], demo: Optional[tuple], clip: float,
                kl_coef: float, bc_coef: float, entropy_coef: float) -> Dict[str, torch.Tensor]:
        """Return the total loss and its terms (detached except 'loss')."""
        dist = chunk_normal(self.policy, self.policy.features(mb['obs'], mb['mask']))
        logp = dist.log_prob(mb['actions']).sum(dim=(1, 2))
        adv = mb['advantages']
        adv = (adv - adv.mean()) / (adv.std() + 1e-8) if adv.numel() > 1 else adv
        policy_loss, clip_fraction = losses.clipped_surrogate(logp, mb['logp'], adv, clip)
        reference = torch.distributions.Normal(mb['ref_mean'], mb['ref_std'])
        kl_bc = losses.gaussian_kl(dist, reference).mean()
        entropy = dist.entropy().mean()
        loss = policy_loss + kl_coef * kl_bc - entropy_coef * entropy
        bc_loss = torch.zeros(())
        if demo is not None:
            bc_loss = self.policy.loss(*demo)['loss']
            loss = loss + bc_coef * bc_loss
        return {'loss': loss, 'policy_loss': policy_loss.detach(), 'kl_bc': kl_bc.detach(),
                'bc_loss': bc_loss.detach(), 'entropy': entropy.detach(),
                'clip_fraction': clip_fraction,
                'approx_kl': losses.approx_kl(logp.detach(), mb['logp'])}


def train_rl(checkpoint: str, out_dir: str, config: Optional[RLConfig] = None,
             env: Union[str, EnvFactory, None] = None, task: Optional[str] = None,
             demos: Any = None, on_log: Optional[Callable[[Dict[str, Any]], None]] = None,
             should_stop: Optional[Callable[[], bool]] = None) -> RLResult:
    """
    Fine-tune the BC policy in checkpoint by PPO into out_dir (resuming from out_dir/last).

    env: 'package.module:factory' or a callable returning a contract env; default: the
    lam_ros task (task, else the checkpoint's). demos: a lam_ros.data.dataset.Dataset for
    the BC term (None: KL term only). on_log gets every metrics row (rank 0); when
    should_stop() turns true, or on KeyboardInterrupt, last/ is saved and the run returns
    with interrupted=True.
    """
    cfg = config or RLConfig()
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    ctx = distributed.setup(cfg.device)
    device = ctx.device
    agent, reference, bc_meta = load_actor_critic(checkpoint, cfg.init_log_std, str(device))
    policy = agent.policy
    pcfg = policy.config
    task = task or bc_meta.get('task')
    if env is not None:
        factory = env_factory(env)
    elif task:
        factory = task_factory(task, pcfg.control_rate_hz, pcfg.robot,
                               **camera_overrides(pcfg))
    else:
        raise ValueError('the checkpoint names no task: pass a task or an env factory')
    # The contract is checked on one env before anything is written.
    make_gated(factory, pcfg.joint_names, pcfg.obs_spec, pcfg.control_rate_hz).close()
    demo_set = demo_windows(demos, pcfg) if demos is not None and cfg.bc_coef > 0 else None
    ref_std = reference.log_std.clamp(pcfg.log_std_min, pcfg.log_std_max).exp()
    archive = None
    if cfg.imitation_capacity:
        if demos is not None:
            check_compatible(demos, pcfg)  # the demos fit the policy (demo_windows checks too)
        keys = list(pcfg.obs_spec)
        archive = SuccessArchive(cfg.num_envs, keys, cfg.imitation_capacity, pcfg.history_len,
                                 pcfg.chunk_size,
                                 demo_episodes(demos, keys) if demos is not None else None)

    os.makedirs(out_dir, exist_ok=True)
    last_dir, best_dir = os.path.join(out_dir, 'last'), os.path.join(out_dir, 'best')
    # One optimizer, two groups; each phase of an update gives gradients to one group only.
    optimizer = torch.optim.Adam([
        {'params': agent.actor_parameters(), 'lr': cfg.lr},
        {'params': agent.critic_parameters(), 'lr': cfg.critic_lr}], eps=1e-5)
    # Self-imitation moves the mean only: cloning would pull log_std up to the data's spread.
    imitator = torch.optim.Adam([p for name, p in policy.named_parameters()
                                 if name != 'log_std'], lr=cfg.imitation_lr, eps=1e-5)
    env_steps, update, best, initial = 0, 0, -1.0, None
    if os.path.isdir(last_dir):
        meta, opt_state = run_state.load_last(last_dir, agent)
        rl = meta.get('rl') or {}
        env_steps, update = int(rl.get('env_steps', 0)), int(rl.get('update', 0))
        best, initial = float(rl.get('best_success_rate', -1.0)), rl.get('initial_success_rate')
        if opt_state is not None:
            optimizer.load_state_dict(opt_state)
    env_steps = distributed.broadcast(env_steps, ctx)
    resumed_from = env_steps
    actor = distributed.data_parallel(Objective(policy), ctx)
    critic = distributed.data_parallel(agent.value_head, ctx)
    imitate = distributed.data_parallel(policy, ctx, 'loss') if archive is not None else None
    agent.eval()  # no dropout: log-probabilities must be those the rollout sampled from

    envs = make_vector_env(factory, cfg.num_envs, pcfg.joint_names, pcfg.obs_spec,
                           pcfg.control_rate_hz, cfg.vector)
    n, steps, k = cfg.num_envs, cfg.rollout_steps, cfg.query_period(pcfg.chunk_size)
    decisions = steps // k  # transitions per env and rollout
    seed = distributed.rank_seed(cfg.seed, ctx)
    torch.manual_seed(seed + env_steps)
    runner = BatchRunner(policy, n, cfg.ensemble_decay)
    log = run_state.RLMetrics(out_dir, env_steps) if ctx.is_main else None
    meta_base = dict(bc_meta, task=task, bc_checkpoint=os.path.abspath(checkpoint),
                     env=env if isinstance(env, str) else None)
    start, rollout_s, rollout_steps_done = time.monotonic(), 0.0, 0
    evaluations: List[Dict[str, Any]] = []
    returns = np.zeros(n)  # env reward of each env's current episode
    lengths = np.zeros(n, dtype=np.int64)  # control steps of each env's current episode
    # Scene of each env's episode (fresh seeds; failed scenes again: replay.py) and the
    # per-episode offset of the sampled chunks of replayed episodes.
    scenes = SceneReplay(ROLLOUT_SEED_START + 50_000_000 * ctx.rank + env_steps,
                         cfg.replay_fraction, cfg.replay_tries, cfg.replay_capacity,
                         np.random.default_rng([seed, env_steps]))
    offsets = torch.zeros((n, 1, pcfg.action_dim), device=device)
    potential = np.zeros(n)  # shaping potential of each env's last state
    interrupted = False
    bar = tqdm(total=cfg.total_env_steps, initial=env_steps, unit='step', desc='rl',
               disable=not (cfg.progress and ctx.is_main), dynamic_ncols=True)

    def metadata(rl_eval_success_rate: Optional[float], best: float) -> Dict[str, Any]:
        rl = {'config': asdict(cfg), 'env_steps': env_steps, 'update': update,
              'eval_success_rate': rl_eval_success_rate, 'best_success_rate': best,
              'initial_success_rate': initial, 'validation_seed_start': VALIDATION_SEED_START,
              'query_every': k, 'ensemble_decay': cfg.ensemble_decay}
        return dict(meta_base, rl=rl)

    def evaluate_and_save() -> None:
        nonlocal best, initial
        if ctx.is_main:
            result = evaluate_vector(policy, envs, cfg.eval_episodes, VALIDATION_SEED_START,
                                     cfg.ensemble_decay, k)
            rate = result['success_rate']
            if initial is None:
                initial = rate
            evaluations.append(dict(result, env_steps=env_steps))
            meta = metadata(rl_eval_success_rate=rate, best=max(best, rate))
            if rate > best:
                best = rate
                save_checkpoint(best_dir, policy, meta)
            run_state.save_last(last_dir, agent, optimizer, meta)
            row = {'env_steps': env_steps, 'update': update, 'eval_success_rate': rate,
                   'eval_return': result['mean_return'], 'elapsed_s': time.monotonic() - start}
            log.write(row)
            if on_log is not None:
                on_log(row)
            bar.set_postfix(eval=f'{rate:.2f}', best=f'{best:.2f}')
        best = distributed.broadcast(best, ctx)
        distributed.barrier(ctx)

    def start_episodes(obs: Optional[Dict[str, np.ndarray]], which: np.ndarray
                       ) -> Dict[str, np.ndarray]:
        """Reset the envs in which onto their next scenes; return every env's observation."""
        seeds = [scenes.start(i) if which[i] else 0 for i in range(n)]
        for i in np.flatnonzero(which):
            noisy = cfg.episode_noise_std > 0 and scenes.replayed(i)
            offsets[i] = torch.randn(offsets.shape[1:], device=device) \
                * cfg.episode_noise_std if noisy else 0.0
        if obs is None:
            return envs.reset(seed=seeds)[0]
        return envs.reset(seed=seeds, options={'reset_mask': which})[0]

    def reset_envs() -> Dict[str, np.ndarray]:
        for i in range(n):
            runner.reset(i)
            scenes.end(i, None)
            if archive is not None:
                archive.end(i, False)
        returns[:] = 0.0
        lengths[:] = 0
        potential[:] = 0.0
        return start_episodes(None, np.ones(n, dtype=bool))

    try:
        if not os.path.isdir(last_dir):
            evaluate_and_save()  # the BC policy: the curve's first point and the first best/
        obs = reset_envs()
        inputs = runner.observe(obs)
        next_eval = (env_steps // cfg.eval_interval + 1) * cfg.eval_interval
        while env_steps < cfg.total_env_steps:
            # ---- rollout: a sampled chunk per env every k control steps (one transition),
            # the ensemble of the chunks covering each step sent as its command ----
            t0 = time.monotonic()
            buf = Buffer(decisions, n, pcfg, device)
            finished: List[tuple] = []
            with torch.no_grad():
                for t in range(decisions):
                    o, m = to_torch(*inputs, device)
                    dist, value, critic_in = agent(o, m)
                    sample = dist.sample()
                    chunks = policy.unnormalize_actions(sample + offsets)
                    chunks = chunks.cpu().double().numpy()
                    reward_sum, discount = np.zeros(n), np.ones(n)
                    ended = np.zeros(n, dtype=bool)
                    for j in range(k):
                        commands = runner.commands(chunks, np.full(n, j == 0), obs['joint_pos'])
                        if archive is not None:  # from the episode's first chunk on
                            archive.record(obs, commands, runner.started)
                        obs, reward, terminated, truncated, info = envs.step(commands)
                        lengths += 1
                        done = np.logical_or(terminated, truncated)
                        if cfg.rollout_episode_steps:  # cut rollout episodes short
                            done |= lengths >= cfg.rollout_episode_steps
                        success = step_success(info, done)
                        phi = np.where(done, 0.0, reward)  # potential; 0 at episode ends
                        r = (cfg.success_reward * success + cfg.env_reward_scale * reward
                             + cfg.shaping_scale * (cfg.gamma * phi - potential))
                        potential = phi
                        # Steps after an episode's end (its successor holds still until the
                        # next query) belong to no transition of the ended episode.
                        reward_sum += np.where(ended, 0.0, discount * r)
                        discount *= cfg.gamma
                        returns += reward
                        for i in np.flatnonzero(done):
                            if not ended[i]:
                                finished.append((bool(success[i]), float(returns[i])))
                            if archive is not None:
                                archive.end(i, bool(success[i]), hard=scenes.replayed(i))
                            scenes.end(i, bool(success[i]))
                            ended[i] = True
                            returns[i], lengths[i] = 0.0, 0
                            runner.reset(i)
                        if done.any():
                            obs = start_episodes(obs, done)
                        inputs = runner.observe(obs)
                    buf.add(t, o, m, sample, dist.log_prob(sample).sum(dim=(1, 2)), value,
                            reward_sum, ended, reference(o, m), critic_in)
                last_value = agent(*to_torch(*inputs, device))[1]
            env_steps += n * steps * ctx.world_size
            rollout_s += time.monotonic() - t0
            rollout_steps_done += n * steps * ctx.world_size
            adv, ret = losses.gae(buf.rewards, buf.values, buf.dones, last_value,
                                  cfg.gamma ** k, cfg.gae_lambda)

            # ---- update: the critic on every sample (cheap: its inputs are stored), then,
            # after the warm-up, the actor on a random part of the rollout per epoch ----
            warm = update < cfg.critic_warmup_updates
            lr_scale = cfg.lr_scale(env_steps)
            optimizer.param_groups[0]['lr'] = cfg.lr * lr_scale  # the policy's group
            for group in imitator.param_groups:
                group['lr'] = cfg.imitation_lr * lr_scale
            kl_coef = cfg.coefficient(cfg.kl_coef, cfg.kl_coef_final, env_steps)
            bc_coef = cfg.coefficient(cfg.bc_coef, cfg.bc_coef_final, env_steps)
            data = buf.flat(adv, ret, ref_std)
            rng = np.random.default_rng([seed, update])
            sums: Dict[str, float] = {}
            count, critic_count, imitation_sum = 0, 0, 0.0
            for _ in range(cfg.critic_epochs):
                for index in minibatches(rng, n * decisions, 1.0, cfg.minibatch_size):
                    index = torch.from_numpy(index).to(device)
                    v_loss = losses.value_loss(critic(data['critic_in'][index]).squeeze(-1),
                                               data['returns'][index])
                    optimizer.zero_grad(set_to_none=True)
                    v_loss.backward()
                    nn.utils.clip_grad_norm_(agent.critic_parameters(), cfg.max_grad_norm)
                    optimizer.step()  # only the value head has gradients
                    sums['value_loss'] = sums.get('value_loss', 0.0) + float(v_loss.detach())
                    critic_count += 1
            for _ in range(0 if warm else cfg.epochs):
                stop_epochs = False
                for index in minibatches(rng, n * decisions, cfg.update_fraction,
                                         cfg.minibatch_size):
                    mb = select(data, torch.from_numpy(index).to(device))
                    demo = demo_batch(demo_set, cfg.bc_batch_size, rng, device)
                    out = actor(mb, demo, cfg.clip, kl_coef, bc_coef, cfg.entropy_coef)
                    optimizer.zero_grad(set_to_none=True)
                    out['loss'].backward()
                    nn.utils.clip_grad_norm_(agent.actor_parameters(), cfg.max_grad_norm)
                    optimizer.step()  # only the policy has gradients
                    count += 1
                    for key, value in out.items():
                        if key != 'loss':
                            sums[key] = sums.get(key, 0.0) + float(value)
                    if cfg.target_kl > 0 and distributed.any_rank(
                            float(out['approx_kl']) > cfg.target_kl, ctx):
                        stop_epochs = True
                        break
                if stop_epochs:
                    break
            if archive is not None and not warm:
                windows = archive.windows()
                for _ in range(cfg.imitation_steps if windows is not None else 0):
                    batch = demo_batch(windows, cfg.imitation_batch_size, rng, device)
                    imitation_loss = imitate(*batch)['loss']
                    imitator.zero_grad(set_to_none=True)
                    imitation_loss.backward()
                    nn.utils.clip_grad_norm_(agent.actor_parameters(), cfg.max_grad_norm)
                    imitator.step()
                    imitation_sum += float(imitation_loss.detach()) / cfg.imitation_steps
            update += 1
            bar.update(n * steps * ctx.world_size)

            means = {k: v / (critic_count if k == 'value_loss' else max(count, 1))
                     for k, v in sums.items()}
            if archive is not None and not warm:
                means['imitation_loss'] = imitation_sum
            row: Dict[str, Any] = distributed.mean_over_ranks(means, ctx)
            row.update(env_steps=env_steps, update=update, kl_coef=kl_coef, bc_coef=bc_coef,
                       actor_lr=0.0 if warm else cfg.lr * lr_scale,
                       std=float(policy.log_std.detach().exp().mean()),
                       steps_per_s=rollout_steps_done / max(rollout_s, 1e-9),
                       elapsed_s=time.monotonic() - start)
            if archive is not None:
                row.update(imitation_episodes=len(archive.kept) + len(archive.hard),
                           imitation_hard_episodes=len(archive.hard))
            if cfg.replay_fraction > 0:
                row.update(replay_episodes=scenes.replays,
                           replay_successes=scenes.replay_successes)
            if finished:
                row.update(train_success_rate=float(np.mean([f[0] for f in finished])),
                           train_return=float(np.mean([f[1] for f in finished])),
                           train_episodes=len(finished))
            if ctx.is_main:
                log.write(row)
                if on_log is not None:
                    on_log(row)
            stop = distributed.any_rank(bool(should_stop and should_stop()), ctx)
            if env_steps >= next_eval or env_steps >= cfg.total_env_steps or stop:
                evaluate_and_save()
                next_eval = (env_steps // cfg.eval_interval + 1) * cfg.eval_interval
                obs = reset_envs()
                inputs = runner.observe(obs)
            if stop:
                interrupted = True
                break
    except KeyboardInterrupt:
        interrupted = True
        if ctx.is_main:
            meta = metadata(rl_eval_success_rate=None, best=best)
            run_state.save_last(last_dir, agent, optimizer, meta)
    finally:
        bar.close()
        # After a Ctrl-C the workers may hold half-collected results: terminate them.
        envs.close(terminate=interrupted)
        if log is not None:
            log.close()
    png = run_state.plot_rl_curves(os.path.join(out_dir, run_state.METRICS_FILE),
                                   os.path.join(out_dir, run_state.PLOT_FILE),
                                   f'PPO fine-tuning ({task or "custom env"})') \
        if ctx.is_main else None
    return RLResult(out_dir, best_dir, last_dir, env_steps, resumed_from, best, initial,
                    time.monotonic() - start, rollout_steps_done / max(rollout_s, 1e-9),
                    interrupted, os.path.join(out_dir, run_state.METRICS_FILE), png or '',
                    evaluations)
