"""The PPO terms against small examples computed by hand."""

import math

from lam_ros.learn.rl import losses, RLConfig
import pytest
import torch


def test_gae_matches_a_hand_computed_rollout():
    # gamma 0.9, lambda 0.8; the episode ends at t=1, so nothing is bootstrapped across it:
    # t=2: delta = 2 + 0.9 * 0.2 - 0.3 = 1.88                  A = 1.88
    # t=1: delta = 0 - 0.4 = -0.4 (done)                         A = -0.4
    # t=0: delta = 1 + 0.9 * 0.4 - 0.5 = 0.86, A = 0.86 + 0.72 * -0.4 = 0.572
    rewards = torch.tensor([[1.0], [0.0], [2.0]])
    values = torch.tensor([[0.5], [0.4], [0.3]])
    dones = torch.tensor([[0.0], [1.0], [0.0]])
    adv, ret = losses.gae(rewards, values, dones, torch.tensor([0.2]), 0.9, 0.8)
    assert adv[:, 0].tolist() == pytest.approx([0.572, -0.4, 1.88])
    assert ret[:, 0].tolist() == pytest.approx([1.072, 0.0, 2.18])


def test_gae_with_lambda_one_and_no_value_is_the_discounted_return():
    rewards = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    adv, ret = losses.gae(rewards, torch.zeros(2, 2), torch.zeros(2, 2), torch.zeros(2), 0.5,
                          1.0)
    assert ret[:, 0].tolist() == pytest.approx([1.5, 1.0])
    assert ret[:, 1].tolist() == pytest.approx([0.5, 1.0])
    assert torch.equal(adv, ret)


def test_clipped_surrogate_matches_hand_computation():
    # ratios 1.5, 0.5, 1.1 with advantages 1, 1, -2 and clip 0.2:
    # min(1.5, 1.2) = 1.2; min(0.5, 0.8) = 0.5; min(-2.2, -2.2) = -2.2 -> loss = 0.5 / 3
    old = torch.zeros(3)
    logp = torch.log(torch.tensor([1.5, 0.5, 1.1]))
    loss, clipped = losses.clipped_surrogate(logp, old, torch.tensor([1.0, 1.0, -2.0]), 0.2)
    assert float(loss) == pytest.approx(0.5 / 3)
    assert float(clipped) == pytest.approx(2 / 3)


def test_clipped_surrogate_gives_no_gradient_beyond_the_clip():
    logp = torch.log(torch.tensor([1.5])).requires_grad_()
    loss, _ = losses.clipped_surrogate(logp, torch.zeros(1), torch.tensor([1.0]), 0.2)
    loss.backward()
    assert float(logp.grad) == 0.0


def test_stay_close_kl_matches_the_closed_form():
    # KL(N(1, 1) || N(0, 2)) = log 2 + (1 + 1) / 8 - 1/2; the second dimension is identical.
    p = torch.distributions.Normal(torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 1.0]]))
    q = torch.distributions.Normal(torch.tensor([[0.0, 0.0]]), torch.tensor([[2.0, 1.0]]))
    expected = math.log(2.0) + 0.25 - 0.5
    assert losses.gaussian_kl(p, q).tolist() == pytest.approx([expected])
    same = losses.gaussian_kl(p, p)
    assert same.tolist() == pytest.approx([0.0], abs=1e-7)
    torch_kl = torch.distributions.kl_divergence(p, q).sum()
    assert float(losses.gaussian_kl(p, q)[0]) == pytest.approx(float(torch_kl))


def test_stay_close_weights_anneal_linearly_to_their_final_value():
    cfg = RLConfig(anneal_env_steps=1000)
    assert cfg.coefficient(0.5, 0.1, 0) == pytest.approx(0.5)
    assert cfg.coefficient(0.5, 0.1, 500) == pytest.approx(0.3)
    assert cfg.coefficient(0.5, 0.1, 5000) == pytest.approx(0.1)


def test_value_loss_and_approx_kl():
    assert float(losses.value_loss(torch.tensor([1.0, 3.0]), torch.tensor([0.0, 1.0]))) == \
        pytest.approx(0.5 * (1 + 4) / 2)
    assert float(losses.approx_kl(torch.zeros(4), torch.zeros(4))) == 0.0
    # k3 at log-ratio r: e^r - 1 - r
    r = 0.3
    assert float(losses.approx_kl(torch.tensor([r]), torch.zeros(1))) == \
        pytest.approx(math.exp(r) - 1 - r, rel=1e-5)


@pytest.mark.parametrize('field,value', [('num_envs', 0), ('gamma', 1.5), ('vector', 'mpi'),
                                         ('lr', 0.0), ('init_log_std', 9.0),
                                         ('update_fraction', 0.0)])
def test_config_names_the_bad_field(field, value):
    with pytest.raises(ValueError, match=field):
        RLConfig(**{field: value})
