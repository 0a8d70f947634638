"""The grading child process (`python -m ttscale.tasks._grading_child`): `grading`'s calls, served by `_isolated`."""

from __future__ import annotations

from ttscale.tasks import grading
from ttscale.tasks._isolated import serve

if __name__ == "__main__":
    serve(grading, warm=lambda: grading.grade_math("1", "1"))
