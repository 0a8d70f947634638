"""Budget forcing on the real SmolLM2 model: nested prefixes equal independent runs, token for token."""

import pytest

from ttscale.engines.base import GREEDY, Sampling
from ttscale.families import get_family
from ttscale.forcing import ForcingConfig, ForcingTokens, Trajectory, derive_seed, generate_trajectories

pytestmark = pytest.mark.model

BUDGETS = [8, 16, 32]
QUESTIONS = ["What is 12 + 9?", "Name three colours.", "Is 91 a prime number? Explain briefly."]


@pytest.mark.parametrize(
    ("sampling", "policy"),
    [(GREEDY, "continue"), (Sampling(temperature=0.8, top_p=0.95), "continue"), (Sampling(temperature=1.0), "accept")],
    ids=["greedy-continue", "seeded-sampling-continue", "seeded-sampling-accept"],
)
def test_nested_prefix_equals_independent_run(smol, sampling, policy):
    config = ForcingConfig(on_early_stop=policy)
    tokens = ForcingTokens.build(smol, get_family("smollm2"))
    prompts = [tuple(smol.chat_prompt_ids([{"role": "user", "content": q}])) for q in QUESTIONS]

    def trajectory(i, limit):
        return Trajectory(prompt_ids=prompts[i], rng_seed=derive_seed(f"q{i}", 0), max_model_tokens=limit)

    nested = [trajectory(i, max(BUDGETS)) for i in range(len(prompts))]
    generate_trajectories(smol, nested, config=config, tokens=tokens, sampling=sampling)
    smol.cache.clear()  # the independent runs recompute everything from scratch, batched as the runner does
    independent = {(i, b): trajectory(i, b) for i in range(len(prompts)) for b in BUDGETS}
    generate_trajectories(smol, list(independent.values()), config=config, tokens=tokens, sampling=sampling)

    for (i, budget), alone in independent.items():
        prefix = nested[i].prefix(budget)
        assert prefix.token_ids == tuple(alone.token_ids), f"question {i}, budget {budget}"
        assert prefix.thinking_tokens <= budget
        if policy == "continue":
            assert prefix.thinking_tokens == budget  # continuations keep the model thinking to the budget
        elif nested[i].natural_end is None:
            assert prefix.thinking_tokens == budget
        else:
            assert prefix.thinking_tokens == min(budget, nested[i].natural_end)
