"""Plain progress lines for a sweep whose output is not a terminal (a SLURM batch log, `tail -f`, CI)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ttscale.sweeps.progress import Progress

LINE_EVERY_S = 30.0  # a status line at most this often; a unit's end or failure is a line at once

__all__ = ["LINE_EVERY_S", "ProgressLines"]


class ProgressLines:
    """Turns the driver's progress reports into lines: one per finished or failed unit as it happens, and a status
    line (rows, cells, units running and failed, tokens/s, ETA) every `every_s` seconds and at the end."""

    def __init__(
        self,
        write: Callable[[str], None],
        *,
        every_s: float = LINE_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.write, self.every_s, self.clock = write, every_s, clock
        self._started: float | None = None
        self._last_line = float("-inf")
        self._last: Progress | None = None

    def __call__(self, progress: Progress) -> None:
        now = self.clock()
        if self._started is None:
            self._started = now
        for event in progress.events:
            self.write(event)
        self._last = progress
        if now - self._last_line >= self.every_s:
            self._line(progress, now)

    def close(self) -> None:
        """The last status line, whatever the interval."""
        if self._last is not None and self._last_line != self.clock():
            self._line(self._last, self.clock())

    def _line(self, p: Progress, now: float) -> None:
        self._last_line = now
        elapsed = max(now - (now if self._started is None else self._started), 1e-9)
        rows = f"rows {p.rows_done}/{p.rows_to_do} ({_percent(p.rows_done, p.rows_to_do)})"
        units = f"units {p.units_done}/{p.units_to_do} done, {p.units_running} running, {p.units_failed} failed"
        rate = f"{p.tokens / elapsed:,.0f} tok/s"
        self.write(
            f"progress: {rows} · cells {p.cells_done}/{p.cells_to_do} · {units} · {rate} · {_clock(elapsed)} "
            f"elapsed, ETA {eta(p, elapsed)}"
        )


def eta(p: Progress, elapsed: float) -> str:
    """Time left at the rate work was stored so far ("?" before the first row): work as the plan's estimated actor
    time of the rows (a 32B model's rows weigh more than a 1.5B model's), or rows where there is no estimate."""
    if p.rows_done <= 0 or p.rows_to_do <= 0:
        return "?"
    if p.work_to_do_s > 0 and p.work_done_s > 0:
        return _clock(elapsed * max(p.work_to_do_s - p.work_done_s, 0.0) / p.work_done_s)
    return _clock(elapsed * max(p.rows_to_do - p.rows_done, 0) / p.rows_done)


def _percent(done: int, total: int) -> str:
    return f"{100 * done / total:.0f}%" if total else "-"


def _clock(seconds: float) -> str:
    hours, rest = divmod(round(seconds), 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"
