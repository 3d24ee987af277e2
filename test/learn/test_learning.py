"""The learning check: behaviour cloning on a few demos lifts the cube on unseen episodes."""

from lam_ros.learn.evaluate import EVAL_SEED_START, evaluate_policy


def test_bc_on_20_demos_lifts_the_cube_in_most_unseen_episodes(lifting_policy):
    """
    A regression here (data, model, training or evaluation) shows as a lower success rate.

    A policy that holds still lifts nothing (test_evaluate.py); the expert lifts every cube.
    """
    result = evaluate_policy(lifting_policy, 'lift', episodes=10)
    seeds = list(range(EVAL_SEED_START, EVAL_SEED_START + 10))
    assert [r['seed'] for r in result['records']] == seeds
    assert result['successes'] >= 8, result['records']
    assert result['success_ci95'][0] > 0.4
