"""Analysis: scaling curves, emergence scores, fits and significance, and the HTML report.

from ttscale.analysis import Results
r = Results.open("results/demo")            # or several directories: one combined view
r.curves("accuracy")                        # dataset curves with 95% bootstrap bands
r.emergence("p_correct", level="problem")   # scores, fits and p-values per curve
r.top_k(8)                                  # the most emergent problems
r.report("analysis/demo")                   # tables + one self-contained HTML report
"""

from ttscale.analysis.results import Results

__all__ = ["Results"]
