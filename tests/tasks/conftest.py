"""Fixtures for task tests: the real benchmark files in ../shared/data, skipped where absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def shared_data_dir() -> Path:
    """`../shared/data` beside the project root, or $TTSCALE_SHARED_DATA."""
    default = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
    return Path(os.environ.get("TTSCALE_SHARED_DATA", default))


@pytest.fixture
def shared_file():
    """Return the path of one shared benchmark file, or skip the test with the reason."""

    def locate(name: str) -> Path:
        path = shared_data_dir() / name
        if not path.is_file():
            pytest.skip(f"{path} is absent: benchmark files live in ../shared/data or $TTSCALE_SHARED_DATA")
        return path

    return locate
