"""Run a sweep: refuse what cannot start before anything is written, claim the results directory, connect, drive.

`run_sweep_file` is what `ttscale sweep` calls and `run_refinement` what `ttscale refine` calls once it has chosen
its budgets: each refuses what cannot start, claims the results directory, runs, and reads back what the
command prints; a `RunView` (`sweeps/run_view.py`) shows each step as it goes. Both run through `run_sweep`:
resolve and plan (every input error first), check the models can start, connect to Ray, check the GPU models
fit, write the manifest, then hand the plan to the `Driver`.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import ray

import ttscale
from ttscale.compaction import Compacted, compact_if_worthwhile
from ttscale.compaction import recover as recover_compaction
from ttscale.engines import engine_unavailable
from ttscale.engines.models import hub_model_problem
from ttscale.errors import TtscaleError, TtscaleWarning
from ttscale.measure import budget_summary
from ttscale.run_lock import RunLock
from ttscale.store import ResultStore
from ttscale.sweeps.driver import Driver
from ttscale.sweeps.original import load_sweep
from ttscale.sweeps.outcome import SweepOutcome
from ttscale.sweeps.placement import (
    Connection,
    check_resources,
    connect,
    is_local,
    launcher_node_types,
    node_resources,
    refuse_or_warn,
)
from ttscale.sweeps.plan import Plan, WorkUnit
from ttscale.sweeps.progress import ProgressFn
from ttscale.sweeps.resolve import ResolvedSweep, is_hub_id, resolve_in
from ttscale.sweeps.run_view import RunView
from ttscale.sweeps.spec import LoadedSweep

if TYPE_CHECKING:
    from ttscale.sweeps.refine import Refinement

__all__ = ["STOP_SIGNALS", "RefinementRun", "SweepRun", "check_models_can_start", "compact_after_run", "is_local",
           "manifest_for", "run_refinement", "run_sweep", "run_sweep_file"]  # fmt: skip

STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)  # preemption, and SLURM's --signal=B:USR1@N time-limit warning
DEFAULT_STOP_GRACE_S = 30.0  # after a stop signal, how long finishing units may take to still be written


@dataclass
class SweepRun:
    """What `run_sweep_file` did: the sweep, its run's outcome, its store, and its rows' accuracy per budget."""

    loaded: LoadedSweep
    outcome: SweepOutcome
    store: ResultStore
    summary: pd.DataFrame | None  # this sweep's stored rows per budget; None if none, or the run stopped early


@dataclass
class RefinementRun:
    """What `run_refinement` did: its run's outcome, its store, and the refined curves before and after."""

    outcome: SweepOutcome
    store: ResultStore
    before: pd.DataFrame
    after: pd.DataFrame | None  # None when the run stopped early


@contextlib.contextmanager
def _stop_on_signals(stop: Callable[[str], None]) -> Iterator[None]:
    """While the driver runs, STOP_SIGNALS ask it to stop gracefully (main thread only: where Python runs
    signal handlers); the previous handlers come back afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {
        sig: signal.signal(sig, lambda signum, frame: stop(signal.Signals(signum).name)) for sig in STOP_SIGNALS
    }
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def plan_sweep(path: Path, *, cluster: Path | None = None) -> tuple[LoadedSweep, ResolvedSweep]:
    """What `ttscale plan` shows: a sweep file loaded and planned against what its results directory holds; with a
    `ray up` cluster file, refused if a model's actor fits none of its node types. Runs nothing."""
    loaded = load_sweep(path)
    resolved = resolve_in(loaded, ResultStore(loaded.spec.output_dir))
    if cluster is not None:
        node_types = launcher_node_types(cluster)
        check_resources(loaded, resolved, list(node_types.values()), where=f"{cluster}'s node types")
    return loaded, resolved


def check_models_can_start(loaded: LoadedSweep, resolved: ResolvedSweep, *, local: bool = True) -> None:
    """Refuse, before anything starts or is written, a model whose engine is missing or whose hub id does not
    exist (a typo would otherwise surface only when its actor fails to load it).

    What is checked is this machine. On a cluster (`local=False`) the workers may have what the driver lacks
    (vLLM, a model in their hub cache), so those become warnings; a model the hub says does not exist, or an
    engine ttscale does not ship, is an error anywhere."""
    with_work = {u.model for u in resolved.plan.units}
    for i, model in enumerate(loaded.spec.models):
        if i not in with_work:
            continue
        problem = engine_unavailable(model.engine)
        if problem:
            where = f"{loaded.path}: `models.{i}.engine` ({model.engine}): {problem}"
            refuse_or_warn(where, fatal=local or engine_unavailable(model.engine, anywhere=True) is not None)
        if model.kind.loads_weights and is_hub_id(model.name) and (hub := hub_model_problem(model.name)):
            where = f"Got '{model.name}' for {loaded.path}: `models.{i}.name`. {hub.message}."
            refuse_or_warn(where, fatal=local or hub.missing)


def manifest_for(
    loaded: LoadedSweep, resolved: ResolvedSweep, previous: dict[str, Any] | None, run: dict[str, Any]
) -> dict[str, Any]:
    """The manifest: this sweep's file and hash, its datasets' identities and problem ids (so `status` needs
    no dataset), versions, every run so far, each with its sweep file, and the refinements recorded so far."""
    runs = list(previous.get("runs", [])) if previous else []
    runs.append({**run, "sweep_text": loaded.text})
    datasets = [
        {"name": ds.name, "identity": task.identity(), "problem_ids": [p.id for p in problems]}
        for ds, task, problems in zip(loaded.spec.datasets, resolved.tasks, resolved.problems, strict=True)
    ]
    return {
        "sweep_name": loaded.spec.name,
        "sweep_path": str(loaded.path),
        "sweep_sha256": loaded.sha256,
        "sweep_text": loaded.text,
        "datasets": datasets,
        "ttscale_version": ttscale.__version__,
        "ray_version": ray.__version__,
        "runs": runs,
        "refinements": list(previous.get("refinements", [])) if previous else [],
    }


def run_sweep_file(
    path: Path,
    *,
    address: str = "local",
    stop_grace_s: float = DEFAULT_STOP_GRACE_S,
    view: RunView = RunView(),
) -> SweepRun:
    """`ttscale sweep`: load the sweep file and refuse, before Ray starts, a damaged manifest, any input error
    and a model that cannot start; then claim the results directory, run, and read back this sweep's accuracy
    per budget. A results directory that cannot be written is one TtscaleError."""
    loaded = None
    try:
        with view.step():  # a config in the original study's format: what differs, once
            loaded = load_sweep(path)
        store = ResultStore(loaded.spec.output_dir)
        store.manifest()  # a damaged manifest is one line before Ray starts
        with view.step():  # an unreadable shard is set aside with one line, and its rows measured again
            resolved = resolve_in(loaded, store)  # every input error, first
        with view.step():
            check_models_can_start(loaded, resolved, local=is_local(address))
        outcome = _run_claimed(loaded, resolved, address=address, stop_grace_s=stop_grace_s, view=view)
    except OSError as exc:  # the results directory: a full disk, no permission, a read-only file system
        where = loaded.spec.output_dir if loaded is not None else path
        raise TtscaleError(
            f"Cannot write results to {where}: {exc}. Free space or fix the directory's permissions, then run the "
            "same command again: finished units are kept."
        ) from exc
    summary = None if outcome.stopped else _budget_summary(store, resolved.plan)
    return SweepRun(loaded, outcome, store, summary)


def run_refinement(
    refinement: Refinement,
    *,
    address: str = "local",
    stop_grace_s: float = DEFAULT_STOP_GRACE_S,
    view: RunView = RunView(),
) -> RefinementRun:
    """`ttscale refine` once its budgets are chosen: refuse a model that cannot start, claim the results
    directory, record the refinement in the manifest before any unit runs, run its forced answers, and read the
    refined curves before and after."""
    from ttscale.sweeps.refine import dataset_values, record_refinement  # the analysis it reads: only here

    loaded, resolved = refinement.loaded, refinement.resolved
    with view.step():
        check_models_can_start(loaded, resolved, local=is_local(address))
    before = dataset_values(refinement)
    outcome = _run_claimed(
        loaded, resolved, address=address, stop_grace_s=stop_grace_s, view=view,
        before=lambda: record_refinement(refinement),
    )  # fmt: skip
    after = None if outcome.stopped else dataset_values(refinement)
    return RefinementRun(outcome, ResultStore(loaded.spec.output_dir), before, after)


def _run_claimed(
    loaded: LoadedSweep,
    resolved: ResolvedSweep,
    *,
    address: str,
    stop_grace_s: float,
    view: RunView,
    before: Callable[[], None] | None = None,
) -> SweepOutcome:
    """Claim the results directory, run the planned units on Ray, compact its shards if they are many (with the
    directory still claimed), and return the outcome.

    `before()` runs once the directory is claimed, before any unit (refine records its refinement there)."""
    plan = resolved.plan
    lock = RunLock(loaded.spec.output_dir, sweep=loaded.spec.name)  # claimed before anything is shown
    if plan.rows_remaining:
        lock.acquire()  # a second driver on this results directory stops here, in one line
    view.claimed(loaded, plan)
    with contextlib.ExitStack() as held:
        held.callback(lock.release)
        if before is not None and plan.rows_remaining:
            before()
        on_progress = held.enter_context(view.running())
        return run_sweep(
            loaded, address=address, on_progress=on_progress, on_connect=view.connected, resolved=resolved,
            stop_grace_s=stop_grace_s, view=view,
        )  # fmt: skip


def compact_after_run(store: ResultStore, view: RunView) -> list[Compacted]:
    """Merge the small shards when there are many (`compaction.compact_if_worthwhile`), and log it in events.jsonl.
    A failure is one warning and keeps the small shards, which read as before: the run's rows are never lost or
    hidden for it (`ttscale compact` tries again)."""
    try:
        done = compact_if_worthwhile(store, progress=view.compacting)
    except Exception as exc:
        warnings.warn(
            f"Compacting {store.root} after the run failed ({type(exc).__name__}: {exc}); every row is kept in its "
            f"small shards, which read as before. `ttscale compact {store.root}` tries again.",
            TtscaleWarning,
            stacklevel=2,
        )
        return []
    if done:
        store.log_event("compacted", **{c.kind: vars(c) for c in done})
        view.compacted(done)
    return done


def _budget_summary(store: ResultStore, plan: Plan) -> pd.DataFrame | None:
    """Accuracy and p_correct per budget of this sweep's stored rows (other sweeps may share the directory)."""
    columns = ["model", "dataset", "problem_id", "budget", "correct", "p_correct", "thinking_tokens"]
    rows = store.rows_where("cell_id", sorted(set(plan.cell_ids.values())), columns).to_pandas()
    return budget_summary(rows) if len(rows) else None


def run_sweep(
    loaded: LoadedSweep,
    *,
    address: str | None = "local",
    on_progress: ProgressFn | None = None,
    on_dispatch: Callable[[Any, WorkUnit], None] | None = None,
    on_connect: Callable[[Connection], None] | None = None,
    resolved: ResolvedSweep | None = None,
    stop_grace_s: float = DEFAULT_STOP_GRACE_S,
    view: RunView = RunView(),
) -> SweepOutcome:
    """Resolve and plan the sweep (errors before anything is written), connect, run, record the manifest, and
    compact the results directory's small shards when they are many (`compact_after_run`; `view` shows it).

    Pass `resolved` (from `resolve_in(loaded, store)`) to reuse a plan already made; the caller then
    runs `check_models_can_start` itself. SIGTERM and SIGUSR1 (preemption, SLURM's time-limit warning) stop
    the run gracefully: no new work; units finishing within `stop_grace_s` are written; `outcome.stopped` says
    so, and the same call again resumes."""
    store = ResultStore(loaded.spec.output_dir)
    checked = resolved is not None  # callers that resolved the sweep also ran check_models_can_start
    resolved = resolved or resolve_in(loaded, store)
    if resolved.plan.rows_remaining == 0:
        return SweepOutcome()
    if not checked:
        check_models_can_start(loaded, resolved, local=is_local(address))
    with RunLock(store.root, sweep=loaded.spec.name):  # one driver per results directory, refused in one line
        outcome = _drive(loaded, resolved, store, address, on_progress, on_dispatch, on_connect, stop_grace_s)
        if not outcome.stopped:  # a stopped run has seconds left: the next run compacts
            compact_after_run(store, view)
        return outcome


def _drive(loaded, resolved, store, address, on_progress, on_dispatch, on_connect, stop_grace_s) -> SweepOutcome:
    """Connect, check resources, record the manifest and run the driver (with the results directory locked)."""
    store.remove_partial_writes()  # a killed driver's half-written files: safe to remove under the lock
    recover_compaction(store)  # and what a killed compaction left: finished or undone
    connection = connect(address)
    if on_connect is not None:
        on_connect(connection)
    check_resources(loaded, resolved, node_resources(), local=connection.started_local)
    run = {"started": time.time(), "address": connection.address, "sweep_sha256": loaded.sha256}
    store.write_manifest(manifest_for(loaded, resolved, store.manifest(), run))
    driver = Driver(resolved, store, on_progress=on_progress, on_dispatch=on_dispatch)
    with _stop_on_signals(lambda name: driver.request_stop(name, stop_grace_s)):
        outcome = driver.run()
    run.update(
        finished=time.time(), rows_written=outcome.rows_written, failed_units=outcome.failed_units,
        engines=driver.engines, fatal=outcome.fatal,
    )  # fmt: skip
    previous = store.manifest()
    if previous is not None:
        previous["runs"][-1].update(run)
        store.write_manifest(previous)
    return outcome
