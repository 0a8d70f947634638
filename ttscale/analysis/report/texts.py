"""The report's prose: what each section says above its figure."""

from __future__ import annotations

import pandas as pd

from ttscale.analysis.emergence import RANK_ALPHA, unranked
from ttscale.analysis.report.names import label


def topk_text(per_problem: pd.DataFrame, metric: str, score: str, ranking: str, min_range: float) -> str:
    """What the top-k section says: the ranked curves and how they were ordered (with the threshold)."""
    text = TOPK_TEXT.format(score=score, metric=label(metric))
    if ranking == "score":
        return text + SCORE_RANKING_TEXT.format(min_range=min_range)
    curves = per_problem[per_problem["metric"] == metric]
    return text + REVIEWED_TEXT.format(
        metric=label(metric), min_range=min_range, alpha=RANK_ALPHA, left_out=unranked(curves, min_range),
        total=int(curves["complete"].astype(bool).sum()),
    )  # fmt: skip


def pass_k_text(pass_k: int) -> str:
    """The sentence saying which pass@k the curves show, and why that k."""
    if pass_k < 2:
        return "There is no pass@k panel: some points ran a single seed, and pass@1 is accuracy."
    return (
        f"pass@{pass_k} is the unbiased estimate of the chance that at least one of {pass_k} seeds is right; "
        f"k = {pass_k} is the fewest seeds any (problem, budget) ran, the largest k every point can estimate."
    )


CURVES_TEXT = (
    "Each panel is one dataset and one metric; lines are the mean over problems of the per-problem mean over "
    "seeds, shaded bands are 95% bootstrap intervals over problems. The discrete metrics (accuracy, pass@k) come "
    "first, then the continuous metrics over the solution set: a jump in accuracy that the continuous metrics do "
    "not show is a candidate artefact of the discrete metric. The last column is the mean real thinking tokens "
    "(log scale), a check that the budget was spent."
)
SCORES_TEXT = (
    "Distribution of <b>{score}</b> over complete problem-level curves, per model (x) and dataset (colour); "
    "diamonds are the dataset-level curves. 1 is a single jump, 1/m an even ramp over m steps, negative a falling "
    "curve."
)
DELTA_BIC_TEXT = (
    "In the tables, read the p-values first: each score's <code>p_*</code> is a calibrated test against a noisy "
    "straight line. ΔBIC (<code>delta_bic_hinge</code>, <code>delta_bic_sigmoid</code>: BIC of the fit minus BIC "
    "of the line) is <b>descriptive</b>: on pure noise around a line it is below −2 for 57% of curves at 4 budgets, "
    "41% at 5, 32% at 6 and 25% at 7, so a negative ΔBIC is no evidence of a break. <code>hinge_preferred</code> "
    "is the verdict: true only with at least {n} budgets and <code>p_delta_bic_hinge</code> &lt; {alpha}, and "
    "empty (no verdict) below {n} budgets."
)
INCOMPLETE_TEXT = (
    "<b>{n} of {total} problem curves of {metric} are incomplete</b>: they have no value at some budget of their "
    "model and dataset's grid. They are scored on the points they have, and fewer points push {score} up (any "
    "rising two-point curve scores 1), so they are not ranked with the complete curves above."
)
PROBLEM_COUNTS_TEXT = (
    "The number of problems behind a point changes along these dataset curves (a problem without a value at a "
    "budget is skipped there), so a change from budget to budget can come from the set of problems, not only "
    "from the budget. The <code>problems_vary</code> column of <code>emergence_datasets</code> flags them."
)
UNCLOSED_TEXT = (
    "Forced answers whose <code>\\boxed{</code> the model never closed (column <code>unclosed</code>), per model, "
    "dataset and budget, by why. One <b>cut by the answer's token cap</b> (<code>truncated</code>) was still being "
    'written ("70" may be the start of "707") and is graded incorrect, whatever its prefix parses to. One that '
    "<b>ended on its own</b> (end of sequence) is graded on what it wrote when it is complete on its own (an "
    "integer, an option letter, or LaTeX that parses whole), otherwise it counts as wrong. Many unclosed answers "
    "at some budgets pull accuracy down there for a reason that is not the reasoning."
)
INFINITE_TEXT = (
    "A score of ±inf (the BIG-bench breakthroughness when the median step is 0, common on quantised accuracy "
    "curves) cannot be drawn: those curves are left out of the boxes and diamonds, and counted here (per model "
    "and dataset in <code>infinite_counts.csv</code>)."
)
REFINED_TEXT = (
    "<code>ttscale refine</code> added budgets to these (model, dataset) grids, cut from the same stored "
    "trajectories. Each refined dataset curve is shown on its doubling grid (dashed) and on every budget (solid, "
    "added budgets ringed). The added budgets <b>locate</b> the jump and change no score: every emergence score "
    "counts steps between budgets (breakthroughness over m steps lies in [1/m, 1]), so scores are computed on "
    "the doubling budgets (one step = one unit of log2 B), here {shared} for every (model, dataset), and a "
    "problem is not penalised for being looked at more closely. The table gives the jump interval (the "
    "neighbouring budgets between which the curve changes most per unit of log2 B) and that slope, on the "
    "doubling grid and on every budget."
)
TOPK_TEXT = (
    "Complete problem curves of {metric}, ranked by {score} oriented so that larger is more emergent in the "
    "curve's own direction (a sudden drop counts like a sudden rise); each title gives the p-value of that score "
    "and the curve's change I(y) (max − min, signed by direction), its effect size. Hover a point for the forced "
    "answers of every seed at that budget; below, the answer and the end of the reasoning at each budget for the "
    "first seed."
)
REVIEWED_TEXT = (
    " <b>Ranking:</b> breakthroughness and skewness are scale-free (a curve moving by a thousandth scores like one "
    "moving by a half), so only curves whose {metric} changes by at least {min_range} (|I(y)|) are ranked "
    "({left_out} of {total} left out), significant ones first (p &lt; {alpha}), each group by the score. "
    "<code>--ranking score</code> ranks by the score alone."
)
SCORE_RANKING_TEXT = (
    " <b>Ranking:</b> by the score alone (<code>--ranking score</code>): scale-free, so a curve that barely "
    "moves can rank first; the default ranks only curves moving by at least {min_range}, significant first."
)
TOKENS_TEXT = (
    "Real thinking tokens behind every forced answer. With exact forcing the boxes sit on the budget line unless "
    "the model ended its thinking itself (on_early_stop=accept); the original study's artefact was a sevenfold "
    "jump here between neighbouring budgets."
)
CORRELATION_TEXT = (
    "How the discrete and the continuous view agree: dataset curves of accuracy against {metric}, and the "
    "distribution of per-problem correlations between the two curves."
)
SIZE_TEXT = (
    "Dataset-level {score} against parameter count (read from the model name), one line per model family, "
    "dataset and metric: does emergence at test time depend on model size?"
)
COMPUTE_TEXT = (
    "Every sweep runs several seeds per (problem, budget), so it also measures <b>parallel</b> scaling: maj@k, the "
    "answer most of k seeds give (ties broken uniformly, equivalent answers voting together after the grader's "
    "normalisation), as its exact expectation over all k-subsets of the seeds. A point (B, k) costs k × the tokens a "
    "seed really spent at B (thinking plus the forced answer). Blue: thinking longer (k = 1, B grows, with its 95% "
    "band); grey: one budget with k growing; red: the compute frontier, the best maj@k at or below each cost over "
    "every (B, k). The table asks whether a jump along k = 1 is still a jump on the frontier: <b>{score}</b> and its "
    "p-value along k = 1 over log2 B, and on the frontier over log2 cost, read on the doubling grid of costs from "
    "the cheapest point with as many points as k = 1 has budgets. Tables: <code>parallel_points</code>, "
    "<code>frontier</code>, <code>frontier_scores</code> (also for pass@k and accuracy)."
)
