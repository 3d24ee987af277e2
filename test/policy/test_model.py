"""TransformerPolicy: shapes, masks, heads, input checks, and overfitting one episode."""

from lam_ros.policy.model import TransformerPolicy
import pytest
import torch

from .helpers import (
    episode_batch, fitted_model, IMAGE, POSE, random_obs, small_config, STATE, synthetic_episode)

torch.set_num_threads(1)


@pytest.mark.parametrize('spec', [STATE, POSE, IMAGE], ids=['state', 'pose', 'image'])
@pytest.mark.parametrize('head', ['regression', 'gaussian'])
def test_output_shapes(spec, head):
    torch.manual_seed(0)
    config = small_config(spec, head=head, history_len=3, chunk_size=4)
    model = TransformerPolicy(config).eval()
    obs = random_obs(config, batch=2)
    chunk = model.predict(obs)
    assert chunk.shape == (2, 4, 8) and chunk.dtype == torch.float32
    assert torch.isfinite(chunk).all()
    actions = torch.randn(2, 4, 8)
    losses = model.loss(obs, None, actions)
    assert losses['loss'].shape == () and losses['loss'].requires_grad
    if head == 'gaussian':
        dist = model.distribution(obs)
        assert dist.mean.shape == (2, 4, 8)
        assert torch.allclose(model.unnormalize_actions(dist.mean), chunk)
        assert model.log_prob(obs, None, actions).shape == (2,)


@pytest.mark.parametrize('spec', [STATE, IMAGE], ids=['state', 'image'])
@pytest.mark.parametrize('vector_tokens', ['key', 'step'])
def test_padded_history_does_not_change_the_output(spec, vector_tokens):
    torch.manual_seed(0)
    config = small_config(spec, history_len=3, vector_tokens=vector_tokens)
    model = TransformerPolicy(config).eval()
    obs = random_obs(config, batch=2, seed=1)
    mask = torch.tensor([[False, False, True], [False, True, True]])
    other = random_obs(config, batch=2, seed=2)
    changed = {}
    for key, x in obs.items():
        keep = mask.view(2, 3, *([1] * (x.dim() - 2)))
        changed[key] = torch.where(keep, x, other[key])
        if x.is_floating_point():
            changed[key][0, 0] = float('nan')  # whatever fills a padded step stays out
    assert torch.equal(model.predict(obs, mask), model.predict(changed, mask))
    # The mask matters: without it the padded values do change the output.
    assert not torch.allclose(model.predict(obs), model.predict(
        {k: v.nan_to_num(0.0) for k, v in changed.items()}))


@pytest.mark.parametrize('decoder_layers', [1, 2])
@pytest.mark.parametrize('vector_tokens, tokens', [('key', 12), ('step', 3)])
def test_encoder_sees_observations_only_and_queries_decode_independently(
        decoder_layers, vector_tokens, tokens):
    torch.manual_seed(0)
    config = small_config(POSE, history_len=3, chunk_size=6, n_decoder_layers=decoder_layers,
                          vector_tokens=vector_tokens)
    model = TransformerPolicy(config).eval()
    seen = []
    hooks = [b.register_forward_hook(lambda m, args, out: seen.append(tuple(out.shape)))
             for b in model.encoder]
    obs = random_obs(config, batch=2)
    before = model(obs)
    for hook in hooks:
        hook.remove()
    # 4 vector keys x 3 history steps, or 3 steps: no action query ever enters the encoder.
    assert seen == [(2, tokens, 32)] * config.n_layers
    with torch.no_grad():
        model.action_queries[2] += 1.0
    after = model(obs)
    changed = (after - before).abs().amax(dim=(0, 2)) > 0
    assert changed.tolist() == [False, False, True, False, False, False]


def test_vector_observations_make_one_token_per_step_and_the_decoder_its_own_width():
    torch.manual_seed(0)
    config = small_config(POSE, history_len=2, chunk_size=5, decoder_d_model=16,
                          vector_tokens='step', decoder_memory_tokens=3)
    model = TransformerPolicy(config).eval()
    assert model.tokens_per_step == 1 and model.obs_proj is None
    assert model.memory_proj.out_features == 3 * 16
    assert model.vector_proj.in_features == sum(s[0] for s in POSE.values())
    obs = random_obs(config, batch=3)
    assert model.features(obs).shape == (3, 5, 16)
    assert model.predict(obs).shape == (3, 5, 8)
    # Every vector key reaches the chunk through the shared token.
    for key in POSE:
        changed = dict(obs, **{key: obs[key] + 1.0})
        assert not torch.allclose(model.predict(changed), model.predict(obs)), key
    same = TransformerPolicy(small_config(POSE, history_len=2, chunk_size=5, vector_tokens='key',
                                          decoder_memory_tokens=1)).eval()
    assert same.memory_proj is None and same.features(obs).shape == (3, 5, 32)
    assert same.tokens_per_step == len(POSE) and same.vector_proj is None


@pytest.mark.parametrize('field', ['n_decoder_layers', 'decoder_ff_mult'])
def test_decoder_sizes_must_be_positive_ints(field):
    for bad in (0, True, 1.5):
        with pytest.raises(ValueError, match=field):
            small_config(STATE, **{field: bad})


def test_action_mask_excludes_steps_past_the_episode_end():
    torch.manual_seed(0)
    config = small_config(STATE, chunk_size=4)
    for head in ('regression', 'gaussian'):
        model = TransformerPolicy(small_config(STATE, chunk_size=4, head=head)).eval()
        obs = random_obs(config, batch=2)
        actions = torch.randn(2, 4, 8)
        action_mask = torch.tensor([[True, True, False, False], [True, True, True, True]])
        garbage = actions.clone()
        garbage[0, 2:] = float('nan')
        a = model.loss(obs, None, actions, action_mask)
        b = model.loss(obs, None, garbage, action_mask)
        assert torch.isfinite(b['loss']) and torch.equal(a['loss'], b['loss'])
        assert not torch.equal(a['loss'], model.loss(obs, None, actions)['loss'])
    lp = model.log_prob(obs, None, garbage, action_mask)
    assert torch.isfinite(lp).all()


def test_log_prob_matches_the_distribution():
    torch.manual_seed(0)
    config = small_config(STATE, head='gaussian', init_log_std=-1.0)
    model = TransformerPolicy(config).eval()
    obs = random_obs(config, batch=3)
    dist = model.distribution(obs)
    sample = dist.sample()
    expected = dist.log_prob(sample).sum(dim=(1, 2))
    assert torch.allclose(model.log_prob(obs, None, sample, normalized=True), expected)
    real = model.unnormalize_actions(sample)
    assert torch.allclose(model.log_prob(obs, None, real), expected, atol=1e-4)
    assert torch.allclose(dist.stddev, torch.full_like(dist.stddev, 0.36787944))


def test_regression_head_has_no_distribution():
    model = TransformerPolicy(small_config(STATE))
    obs = random_obs(model.config, batch=1)
    with pytest.raises(ValueError, match="head='gaussian'"):
        model.distribution(obs)


def test_wrong_observations_raise_clear_errors():
    model = TransformerPolicy(small_config(POSE))
    obs = random_obs(model.config, batch=2)
    with pytest.raises(ValueError, match=r"lacks keys \['goal_pose'\]"):
        model.predict({k: v for k, v in obs.items() if k != 'goal_pose'})
    with pytest.raises(ValueError, match=r"obs\['object_pose'\] has shape \(2, 2, 6\)"):
        model.predict({**obs, 'object_pose': torch.zeros(2, 2, 6)})
    with pytest.raises(ValueError, match='obs_mask must be a bool'):
        model.predict(obs, torch.ones(2, 2))
    with pytest.raises(ValueError, match='no valid history step'):
        model.predict(obs, torch.tensor([[True, True], [False, False]]))
    with pytest.raises(ValueError, match=r'actions must have shape \(batch, 20, 8\)'):
        model.loss(obs, None, torch.zeros(2, 10, 7))
    # Extra keys (e.g. the env's ee_pose) are ignored.
    assert model.predict({**obs, 'ee_pose': torch.zeros(2, 2, 7)}).shape == (2, 20, 8)


@pytest.mark.parametrize('head', ['regression', 'gaussian'])
def test_overfits_one_episode(head):
    torch.manual_seed(0)
    config = small_config(STATE, head=head, chunk_size=5, init_log_std=-1.0)
    pos, actions = synthetic_episode(length=40)
    model = fitted_model(config, pos, actions)
    batch = episode_batch(config, pos, actions)
    steps = 300
    # The log-std is one number per output moved by Adam about lr per step, so it gets a
    # larger rate to reach the data's spread within a few hundred steps.
    log_std = [p for n, p in model.named_parameters() if n == 'log_std']
    rest = [p for n, p in model.named_parameters() if n != 'log_std']
    opt = torch.optim.AdamW([{'params': rest}, {'params': log_std, 'lr': 3e-2}], lr=3e-3,
                            weight_decay=0.0)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    first = model.loss(*batch)
    for _ in range(steps):
        losses = model.loss(*batch)
        opt.zero_grad()
        losses['loss'].backward()
        opt.step()
        sched.step()
    model.eval()
    final = model.loss(*batch)
    assert final['l1'] < 0.03 * first['l1']
    if head == 'regression':
        assert final['loss'] < 0.03
    else:
        # Far below the best NLL the initial std allows (log(e^-1) + 0.919 = -0.08).
        assert final['nll'] < -1.5 and final['std'] < 0.1
    # The same fit seen in real units: joint targets within a few mrad / tenths of a mm.
    pred = model.predict(batch[0], batch[1])
    err = (pred - batch[2])[batch[3]].abs()
    assert float(err.mean()) < 0.03 * float(batch[2].std())


def test_num_parameters_counts_weights_not_statistics():
    model = TransformerPolicy(small_config(IMAGE))
    total = sum(p.numel() for p in model.parameters())
    assert model.num_parameters() == total
    model.action_head.requires_grad_(False)
    assert model.num_parameters(trainable_only=True) == total - 32 * 8 - 8
