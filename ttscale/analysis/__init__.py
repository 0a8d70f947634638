"""Analysis: scaling curves, emergence scores, fits and significance, and the HTML report.

from ttscale.analysis import Results
r = Results.open("results/demo")            # or several directories: one combined view
r.curves("accuracy")                        # dataset curves with 95% bootstrap bands
r.emergence("p_correct", level="problem")   # scores, fits and p-values per curve
r.top_k(8)                                  # the most emergent problems
r.report("analysis/demo")                   # tables + one self-contained HTML report

The original study's notebook API, over the same numbers (docs/migrating.md):
from ttscale.analysis import AnalysisWorkflow
AnalysisWorkflow(paths=["results/demo"], results_save_dir="analysis").emergence_scores(model_name="smollm2")
"""

from ttscale.analysis.notebook import Results
from ttscale.analysis.workflow import AnalysisWorkflow

__all__ = ["AnalysisWorkflow", "Results"]
