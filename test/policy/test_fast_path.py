"""The inference plan computes what the module path computes, and follows the weights."""

import copy

from lam_ros.policy.export import PredictGraph
from lam_ros.policy.fast_path import Dense, InferencePlan
from lam_ros.policy.model import TransformerPolicy
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from .helpers import IMAGE, POSE, random_obs, small_config

CASES = {
    'default': (POSE, {}),
    'one_token_per_step': (POSE, {'vector_tokens': 'step', 'decoder_memory_tokens': 4}),
    'two_decoder_layers': (POSE, {'n_decoder_layers': 2, 'decoder_d_model': 16}),
    'cameras': (IMAGE, {}),
    'wide': (POSE, {'d_model': 128, 'n_heads': 4}),
}


def _model(case: str) -> TransformerPolicy:
    spec, overrides = CASES[case]
    torch.manual_seed(0)
    model = TransformerPolicy(small_config(spec, history_len=3, chunk_size=7, **overrides))
    g = torch.Generator().manual_seed(1)
    for key, stats in model.normalizer.stats.items():
        if not key.endswith(('_rgb', '_depth')):
            stats.mean.normal_(generator=g)
            stats.std.uniform_(0.5, 2.0, generator=g)
    return model.eval()


def _reference(model: TransformerPolicy, obs: dict, mask: torch.Tensor) -> torch.Tensor:
    """Run the module path: with gradients enabled the plan never applies."""
    with torch.enable_grad():
        return model.unnormalize_actions(model(obs, mask)).detach()


@pytest.mark.parametrize('case', sorted(CASES))
def test_plan_matches_the_module_path_for_any_mask_and_batch(case):
    model = _model(case)
    obs = random_obs(model.config, batch=3, seed=2)
    for mask in (None, torch.tensor([[False, False, True], [False, True, True],
                                     [True, True, True]])):
        with torch.no_grad():
            fast = model.predict(obs, mask)
            features = model.features(obs, mask)
        assert isinstance(model.__dict__.get('_plan'), InferencePlan)
        assert torch.allclose(fast, _reference(model, obs, mask), atol=1e-5, rtol=1e-5)
        with torch.enable_grad():
            assert torch.allclose(features, model.features(obs, mask), atol=1e-5)
    # A copy (the RL reference policy is one) leaves the plan behind and builds its own.
    twin = copy.deepcopy(model)
    assert '_plan' not in twin.__dict__
    with torch.no_grad():
        assert torch.allclose(twin.predict(obs, mask), fast, atol=1e-6)


def test_plan_follows_weight_changes_and_keeps_padded_steps_out():
    model = _model('default')
    obs = random_obs(model.config, batch=2, seed=3)
    mask = torch.tensor([[False, True, True], [True, True, True]])
    before = model.predict(obs, mask)
    # An optimiser step in eval mode, then new weights loaded: both change the result.
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    model.loss(obs, mask, torch.randn(2, 7, 8))['loss'].backward()
    optimizer.step()
    stepped = model.predict(obs, mask)
    assert not torch.allclose(before, stepped)
    assert torch.allclose(stepped, _reference(model, obs, mask), atol=1e-5)
    model.load_state_dict(_model('default').state_dict())
    assert torch.allclose(model.predict(obs, mask), before, atol=1e-6)
    # Whatever fills a padded step (even NaN) does not reach the output.
    filled = {k: v.clone() for k, v in obs.items()}
    for x in filled.values():
        x[0, 0] = float('nan')
    assert torch.equal(model.predict(filled, mask), model.predict(obs, mask))


def test_training_and_gradients_take_the_module_path():
    model = _model('default').train()
    obs = random_obs(model.config, batch=1, seed=4)
    model(obs).sum().backward()
    assert model.action_queries.grad is not None and '_plan' not in model.__dict__
    with torch.no_grad():
        model.predict(obs)
    assert '_plan' not in model.__dict__  # training mode: dropout would differ


def test_weights_made_in_inference_mode_take_the_module_path():
    with torch.inference_mode():
        model = _model('default')
        obs = random_obs(model.config, batch=1, seed=5)
        assert model.predict(obs).shape == (1, 7, 8)
    assert '_plan' not in model.__dict__  # no version counter to follow such weights


@pytest.mark.parametrize('shape', [(512, 1024), (1024, 512), (16, 32)],
                         ids=['widening', 'narrowing', 'small'])
@pytest.mark.parametrize('rows', [1, 3, 8, 9, 100])
@pytest.mark.parametrize('gelu', [False, True])
def test_dense_gives_linear_results_for_any_rows(shape, rows, gelu):
    torch.manual_seed(0)
    layer = nn.Linear(*shape)
    dense = Dense.of(layer, gelu=gelu)
    assert dense.packed == (shape != (16, 32))  # small layers are not worth packing
    x = torch.randn(2, rows, shape[0])
    with torch.no_grad():
        want = layer(x)
        want = F.gelu(want) if gelu else want
        got = dense(x)
    assert got.shape == want.shape == (2, rows, shape[1])
    assert torch.allclose(got, want, atol=1e-5, rtol=1e-5)


def test_the_torch_backend_graph_runs_the_plan_and_traces_the_module_path():
    model = _model('wide')  # packed layers: the trace must not hold them
    graph = PredictGraph(model).eval()
    obs = random_obs(model.config, batch=2, seed=6)
    mask = torch.tensor([[False, True, True], [True, True, True]])
    args = (mask, *(obs[k] for k in graph.keys))
    with torch.no_grad():
        got = graph(*args)
        assert '_plan' in model.__dict__  # what the inference node's torch backend runs
        traced = torch.jit.trace(graph, args, check_trace=False)
    assert torch.allclose(got, _reference(model, obs, mask), atol=1e-5)
    assert 'mkldnn' not in str(traced.inlined_graph)  # exports keep plain ops
    assert torch.allclose(traced(*args), got, atol=1e-5)
