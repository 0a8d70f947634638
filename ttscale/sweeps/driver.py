"""The sweep driver: connect to Ray, start one actor pool per model, feed work units, stream results.

The driver never touches tokens. It owns placement (CPUs for `hf` actors, `tensor_parallel` GPUs for
GPU engines, packed on one node), dispatches units from a queue so faster actors take more, keeps at
most `IN_FLIGHT_PER_ACTOR` units queued per actor, retries a failed unit (on another actor when there is
one), writes each finished unit's shard atomically as it arrives, and frees a model's actors as soon as
its queue is empty so the next model's actors can take the resources.
"""

from __future__ import annotations

import contextlib
import time
import traceback
import warnings
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import ray
from ray.util.placement_group import placement_group, remove_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

import ttscale
from ttscale.actors.engines import engine_unavailable
from ttscale.actors.engines.models import hub_model_problem
from ttscale.actors.worker import WorkerActor
from ttscale.errors import TtscaleError, TtscaleWarning
from ttscale.store import ResultStore
from ttscale.sweeps.metrics import SweepMetrics
from ttscale.sweeps.plan import WorkUnit, run_settings
from ttscale.sweeps.resolve import ResolvedSweep, is_hub_id, resolve
from ttscale.sweeps.spec import LoadedSweep, ModelSpec

IN_FLIGHT_PER_ACTOR = 2  # one running, one waiting in the actor's queue, so an actor never idles
NAMESPACE = "ttscale"


@dataclass
class Connection:
    """Where the driver is connected, and how to see it."""

    address: str
    dashboard_url: str | None
    started_local: bool


def is_local(address: str | None) -> bool:
    """Does this address start a Ray instance on this machine (rather than join a cluster)?"""
    return address in (None, "", "local")


def connect(address: str | None = "local", *, num_cpus: int | None = None) -> Connection:
    """`local` (default) starts a local Ray instance with the dashboard; `auto` or host:port joins a cluster."""
    if ray.is_initialized():
        ctx = ray.get_runtime_context()
        return Connection(address=ctx.gcs_address, dashboard_url=_dashboard_url(), started_local=False)
    if is_local(address):
        ctx = ray.init(
            include_dashboard=True, dashboard_host="127.0.0.1", num_cpus=num_cpus, namespace=NAMESPACE,
            log_to_driver=False, configure_logging=False,
        )  # fmt: skip
        return Connection(
            address=ctx.address_info["address"], dashboard_url=_url(ctx.dashboard_url), started_local=True
        )
    try:
        ctx = ray.init(address=address, namespace=NAMESPACE, log_to_driver=False)
    except (ConnectionError, RuntimeError) as exc:
        raise TtscaleError(
            f"Cannot connect to a Ray cluster at '{address}' ({str(exc).splitlines()[0]}). Start one with "
            "`ray start --head`, or use --address local."
        ) from None
    return Connection(address=address, dashboard_url=_url(ctx.dashboard_url), started_local=False)


def _url(url: str | None) -> str | None:
    return None if not url else url if url.startswith("http") else f"http://{url}"


def _dashboard_url() -> str | None:
    try:
        return _url(ray._private.worker.get_dashboard_url())
    except Exception:
        return None


def actor_options(model: ModelSpec, *, label: str, threads: int) -> dict[str, Any]:
    """Ray resources for one actor of `model`: CPUs for hf, `tensor_parallel` GPUs (one node) otherwise."""
    opts: dict[str, Any] = {"name": label, "namespace": NAMESPACE, "max_restarts": 0, "max_task_retries": 0}
    if model.engine == "hf":
        return {**opts, "num_cpus": threads, "num_gpus": 0}
    if model.tensor_parallel == 1:
        return {**opts, "num_cpus": 1, "num_gpus": 1}
    # TP > 1: the actor sits on the first of tp {GPU: 1, CPU: 1} bundles, PACKed onto one node; the engine's
    # own workers take the other bundles of the same group (placement_group_capture_child_tasks).
    return {**opts, "num_cpus": 0, "num_gpus": 0, "placement": [{"GPU": 1, "CPU": 1}] * model.tensor_parallel}


def plan_replicas(models: list[ModelSpec], units_per_model: list[int], resources: dict[str, float]) -> list[int]:
    """Actors per model: the number asked for, or auto = the model's share of the cluster, never more than
    it has units. CPU (hf) models share the CPUs; GPU models share the GPUs."""
    cpu_models = sum(1 for m, n in zip(models, units_per_model, strict=True) if m.engine == "hf" and n)
    gpu_models = sum(1 for m, n in zip(models, units_per_model, strict=True) if m.engine != "hf" and n)
    out = []
    for model, units in zip(models, units_per_model, strict=True):
        if units == 0:
            out.append(0)
            continue
        if model.replicas != "auto":
            out.append(min(int(model.replicas), units))
            continue
        if model.engine == "hf":
            share = resources.get("CPU", 1) / max(cpu_models, 1)
            auto = int(share // hf_threads(model, resources))
        else:
            auto = int(resources.get("GPU", 0) / max(gpu_models, 1) // model.tensor_parallel)
        out.append(max(1, min(auto, units)))
    return out


def hf_threads(model: ModelSpec, resources: dict[str, float]) -> int:
    return model.threads or max(1, min(4, int(resources.get("CPU", 1))))


@dataclass
class _Slot:
    """One actor of a model's pool."""

    model: int
    replica: int
    label: str
    handle: Any
    placement: Any = None
    in_flight: int = 0
    generation: int = 0
    jobs: list[_Job] = field(default_factory=list)  # dispatched, not yet back, in dispatch (= run) order
    running_when_lost: _Job | None = None  # the unit that was running when the actor died


@dataclass
class _Job:
    unit: WorkUnit
    expected: set[tuple[str, str]]
    attempt: int = 1
    avoid: set[str] = field(default_factory=set)  # labels of actors it already failed on
    started: float = 0.0
    slot: _Slot | None = None


@dataclass
class SweepOutcome:
    """What a run did."""

    rows_written: int = 0
    units_done: int = 0
    failed_units: list[str] = field(default_factory=list)
    fatal: list[str] = field(default_factory=list)  # models that could not start
    tokens: int = 0
    seconds: float = 0.0


@dataclass(frozen=True)
class Progress:
    """How far this run is: cells (model, dataset, budget, seed) and rows (cell × problem) it set out to do."""

    cells_done: int
    cells_to_do: int
    rows_done: int
    rows_to_do: int
    tokens: int  # generated by this run's finished units


ProgressFn = Callable[[Progress], None]


class Driver:
    """Runs one resolved sweep on a connected Ray cluster; see the module docstring."""

    def __init__(
        self,
        resolved: ResolvedSweep,
        store: ResultStore,
        *,
        on_progress: ProgressFn | None = None,
        on_dispatch: Callable[[Any, WorkUnit], None] | None = None,
    ) -> None:
        self.resolved, self.store = resolved, store
        self.spec = resolved.spec
        self.on_progress, self.on_dispatch = on_progress, on_dispatch
        self.done = store.done_keys()
        self.outcome = SweepOutcome()
        self.slots: list[_Slot] = []
        self.queues: list[deque[_Job]] = [deque() for _ in self.spec.models]
        self.in_flight: dict[Any, _Job] = {}
        self.engines: dict[str, dict[str, Any]] = {}  # model -> engine/model versions seen in its rows
        self.rows_left_per_cell: Counter[str] = Counter()
        self.cells_to_do = [0] * len(self.spec.models)
        self.cells_done = [0] * len(self.spec.models)
        self.metrics = SweepMetrics(self.spec.name)
        self._generations = 0  # replacement actors get fresh names: the dead one's may linger a moment

    # -- actors -----------------------------------------------------------------------------------------

    def _start_actor(self, model_index: int, replica: int, generation: int = 0) -> _Slot:
        model = self.spec.models[model_index]
        resources = ray.cluster_resources()
        threads = hf_threads(model, resources)
        label = f"{self.spec.name}/{model.name}#{replica}" + (f".{generation}" if generation else "")
        opts = actor_options(model, label=label, threads=threads)
        bundles = opts.pop("placement", None)
        pg = None
        if bundles:
            pg = placement_group(bundles, strategy="PACK", name=f"{label}/pg")
            opts["scheduling_strategy"] = PlacementGroupSchedulingStrategy(
                placement_group=pg, placement_group_bundle_index=0, placement_group_capture_child_tasks=True
            )
        engine_options = dict(model.engine_options)
        engine_options.setdefault("dtype", model.resolved_dtype)
        if model.engine == "hf":
            engine_options.setdefault("threads", threads)
        elif model.tensor_parallel > 1:
            engine_options.setdefault("tensor_parallel", model.tensor_parallel)
        handle = WorkerActor.options(**opts).remote(
            model=model.name, engine=model.engine, engine_options=engine_options,
            settings=run_settings(self.spec, model), label=label,
        )  # fmt: skip
        return _Slot(
            model=model_index, replica=replica, label=label, handle=handle, placement=pg, generation=generation
        )

    def _stop_actor(self, slot: _Slot) -> None:
        with contextlib.suppress(Exception):
            ray.kill(slot.handle, no_restart=True)
        if slot.placement is not None:
            remove_placement_group(slot.placement)

    def _generation(self) -> int:
        self._generations += 1
        return self._generations

    def _replace(self, slot: _Slot) -> _Slot:
        self._stop_actor(slot)
        self.slots.remove(slot)
        fresh = self._start_actor(slot.model, slot.replica, self._generation())
        self.slots.append(fresh)
        return fresh

    # -- the loop ---------------------------------------------------------------------------------------

    def run(self) -> SweepOutcome:
        start = time.perf_counter()
        plan = self.resolved.plan
        for unit in plan.units:
            expected = plan.expected_keys(unit, self.done)
            if expected:
                self.queues[unit.model].append(_Job(unit=unit, expected=expected))
        to_do = sum(len(j.expected) for q in self.queues for j in q)
        self.rows_left_per_cell = Counter(cell for q in self.queues for j in q for cell, _ in j.expected)
        for m, (model, queue) in enumerate(zip(self.spec.models, self.queues, strict=True)):
            self.cells_to_do[m] = len({cell for j in queue for cell, _ in j.expected})
            self.metrics.cells(model.name, 0, self.cells_to_do[m])
        units_per_model = [len(q) for q in self.queues]
        replicas = plan_replicas(self.spec.models, units_per_model, ray.cluster_resources())
        for m, n in enumerate(replicas):
            self.slots.extend(self._start_actor(m, r) for r in range(n))
        self.store.log_event("run_start", units=sum(units_per_model), rows=to_do, replicas=replicas)
        self._report(to_do)
        try:
            while self.in_flight or any(self.queues):
                self._dispatch()
                self._collect(to_do)
                self._release_finished_pools()
        finally:
            for slot in list(self.slots):
                self._stop_actor(slot)
            self.outcome.seconds = time.perf_counter() - start
            self.store.log_event("run_end", **{k: v for k, v in self.outcome.__dict__.items()})
        return self.outcome

    def _dispatch(self) -> None:
        for m, queue in enumerate(self.queues):  # a retried unit may come back after its pool was freed
            if queue and not any(s.model == m for s in self.slots):
                self.slots.append(self._start_actor(m, 0, generation=self._generation()))
        for slot in self.slots:
            queue = self.queues[slot.model]
            while queue and slot.in_flight < IN_FLIGHT_PER_ACTOR:
                job = self._next_job(queue, slot)
                if job is None:
                    break
                d = job.unit.dataset
                by_id = {p.id: p for p in self.resolved.problems[d]}
                problems = [by_id[pid] for pid in job.unit.problem_ids]
                ref = slot.handle.run.remote(
                    self.resolved.tasks[d], problems, list(job.unit.seeds), list(job.unit.budgets), job.expected
                )
                job.slot, job.started = slot, time.monotonic()
                slot.in_flight += 1
                slot.jobs.append(job)
                self.in_flight[ref] = job
                self.store.log_event("dispatch", unit=job.unit.unit_id, actor=slot.label, attempt=job.attempt)
                if self.on_dispatch is not None:
                    self.on_dispatch(slot.handle, job.unit)

    def _next_job(self, queue: deque[_Job], slot: _Slot) -> _Job | None:
        """The first queued job this actor has not failed yet (any job if every actor has failed it)."""
        pool = [s.label for s in self.slots if s.model == slot.model]
        for i, job in enumerate(queue):
            if slot.label not in job.avoid or set(pool) <= job.avoid:
                del queue[i]
                return job
        return None

    def _collect(self, to_do: int) -> None:
        ready, _ = ray.wait(list(self.in_flight), num_returns=1, timeout=1.0)
        for ref in ready:
            job = self.in_flight.pop(ref)
            try:
                result = ray.get(ref)
            except ray.exceptions.RayActorError as exc:
                self._failed(job, exc, actor_lost=True)
            except ray.exceptions.RayTaskError as exc:
                self._failed(job, exc, actor_lost=False)
            else:
                self._write(job, result)
            job.slot.in_flight -= 1
            job.slot.jobs.remove(job)
            self._report(to_do)
        self._time_out_hung_units()

    def _write(self, job: _Job, result: dict[str, Any]) -> None:
        rows = result["rows"]
        keys = set(zip(rows.column("cell_id").to_pylist(), rows.column("problem_id").to_pylist(), strict=True))
        if keys & self.done:  # never write a row twice, whatever an actor returns
            raise RuntimeError(f"unit {job.unit.unit_id} returned rows that are already stored")
        self.store.write_unit(job.unit.unit_id, rows, result["trajectories"])
        self.done |= keys
        model = self.spec.models[job.unit.model].name
        self._count_cells(keys, job.unit.model)
        self.metrics.stored(model, rows.num_rows, result["tokens"], time.monotonic() - job.started)
        if model not in self.engines and rows.num_rows:
            first = rows.slice(0, 1).to_pylist()[0]
            self.engines[model] = {
                k: first[k] for k in ("engine", "engine_version", "model_path", "family", "config_id", "config")
            }
            self._record_engines()
        self.outcome.rows_written += rows.num_rows
        self.outcome.units_done += 1
        self.outcome.tokens += result["tokens"]
        self.store.log_event(
            "done", unit=job.unit.unit_id, actor=job.slot.label, rows=rows.num_rows, seconds=result["seconds"]
        )

    def _count_cells(self, keys: set[tuple[str, str]], m: int) -> None:
        """Cells whose last expected row just arrived count as done."""
        for cell, _ in keys:
            self.rows_left_per_cell[cell] -= 1
            if self.rows_left_per_cell[cell] == 0:
                self.cells_done[m] += 1
        self.metrics.cells(self.spec.models[m].name, self.cells_done[m], self.cells_to_do[m])

    def _record_engines(self) -> None:
        """Put the engine and model versions into this run's manifest entry as soon as they are known."""
        manifest = self.store.manifest()
        if manifest is not None and manifest.get("runs"):
            manifest["runs"][-1]["engines"] = dict(self.engines)
            self.store.write_manifest(manifest)

    def _failed(self, job: _Job, exc: BaseException, *, actor_lost: bool) -> None:
        """Record a failed attempt and queue the unit again, unless it is out of attempts.

        When an actor dies, every unit queued on it comes back failed, but calls run in dispatch order,
        so only the oldest had started: the others are requeued without spending an attempt."""
        error, slot = _short_error(exc), job.slot
        if actor_lost and _died_starting(exc):
            self._record(job, exc, error, final=True)
            self._model_cannot_start(job.unit.model, error)
            self.outcome.failed_units.append(job.unit.unit_id)
            return
        if actor_lost:
            if slot.running_when_lost is None:
                slot.running_when_lost = slot.jobs[0] if slot.jobs else job
            if slot in self.slots:
                self._replace(slot)
            if job is not slot.running_when_lost:
                self.store.log_event("requeued", unit=job.unit.unit_id, actor=slot.label, reason="actor lost")
                self.queues[job.unit.model].appendleft(job)
                return
        final = job.attempt >= self.spec.max_attempts
        self._record(job, exc, error, final=final)
        if final:
            self.outcome.failed_units.append(job.unit.unit_id)
            return
        job.attempt += 1
        job.avoid.add(slot.label)
        self.queues[job.unit.model].appendleft(job)

    def _record(self, job: _Job, exc: BaseException, error: str, *, final: bool) -> None:
        self.store.record_failure(
            job.unit.unit_id, job.attempt, error, "".join(traceback.format_exception(exc))[-4000:],
            actor=job.slot.label, model=self.spec.models[job.unit.model].name,
            dataset=self.spec.datasets[job.unit.dataset].name, budgets=list(job.unit.budgets), final=final,
        )  # fmt: skip
        self.store.log_event("failed", unit=job.unit.unit_id, actor=job.slot.label, attempt=job.attempt, error=error)
        self.metrics.failed(self.spec.models[job.unit.model].name)

    def _model_cannot_start(self, model: int, error: str) -> None:
        """An actor failed while loading its model: retrying elsewhere will fail the same way."""
        name = self.spec.models[model].name
        message = f"model '{name}' could not start: {error}"
        if message not in self.outcome.fatal:
            self.outcome.fatal.append(message)
        for slot in [s for s in self.slots if s.model == model]:
            self._stop_actor(slot)
            self.slots.remove(slot)
        while self.queues[model]:
            self.outcome.failed_units.append(self.queues[model].popleft().unit.unit_id)

    def _time_out_hung_units(self) -> None:
        limit = self.spec.unit_timeout_s
        if limit is None:
            return
        now = time.monotonic()
        for job in list(self.in_flight.values()):
            if job.slot is not None and now - job.started > limit and job.slot in self.slots:
                ray.kill(job.slot.handle, no_restart=True)  # a hung engine: its refs fail as actor errors

    def _release_finished_pools(self) -> None:
        for slot in list(self.slots):
            if not self.queues[slot.model] and slot.in_flight == 0:
                self._stop_actor(slot)
                self.slots.remove(slot)

    def _report(self, to_do: int) -> None:
        if self.on_progress is not None:
            done, total, out = sum(self.cells_done), sum(self.cells_to_do), self.outcome
            self.on_progress(Progress(done, total, out.rows_written, to_do, out.tokens))


def _died_starting(exc: BaseException) -> bool:
    """Did the actor die in its constructor (model load), rather than while running a unit?"""
    return "creation task" in str(exc) or "__init__" in str(exc)


def _short_error(exc: BaseException) -> str:
    cause = getattr(exc, "cause", None) or exc
    text = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {text[0] if text else ''}"[:300]


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
            _refuse_or_warn(where, fatal=local or engine_unavailable(model.engine, anywhere=True) is not None)
        if is_hub_id(model.name) and (hub := hub_model_problem(model.name)):
            where = f"Got '{model.name}' for {loaded.path}: `models.{i}.name`. {hub.message}."
            _refuse_or_warn(where, fatal=local or hub.missing)


def check_resources(
    loaded: LoadedSweep, resolved: ResolvedSweep, node_gpus: list[float], *, local: bool = True
) -> None:
    """Refuse a sweep whose GPU models fit on no node (an engine's GPUs are packed on one node), instead of
    waiting forever for them; on a cluster that may autoscale (`local=False`) this is a warning."""
    units = {u.model for u in resolved.plan.units}
    largest = max(node_gpus, default=0.0)
    for i, model in enumerate(loaded.spec.models):
        if i in units and model.engine != "hf" and largest < model.tensor_parallel:
            _refuse_or_warn(
                f"{loaded.path}: `models.{i}.tensor_parallel` ({model.tensor_parallel}): no node of the Ray cluster "
                f"has that many GPUs (the most on one node: {largest:g}). Join a GPU cluster with --address, "
                "lower tensor_parallel, or use engine: hf",
                fatal=local,
            )


def node_gpus() -> list[float]:
    """GPUs of each live node of the connected cluster."""
    return [float(n["Resources"].get("GPU", 0)) for n in ray.nodes() if n.get("Alive")]


def _refuse_or_warn(message: str, *, fatal: bool) -> None:
    if fatal:
        raise TtscaleError(message if message.endswith(".") else message + ".")
    warnings.warn(f"{message.rstrip('.')}; continuing, as the cluster's workers may differ.", TtscaleWarning, 3)


def manifest_for(
    loaded: LoadedSweep, resolved: ResolvedSweep, previous: dict[str, Any] | None, run: dict[str, Any]
) -> dict[str, Any]:
    """The manifest: this sweep's file and hash, its datasets' identities and problem ids (so `status` needs
    no dataset), versions, and every run so far, each with its sweep file."""
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
    }


def run_sweep(
    loaded: LoadedSweep,
    *,
    address: str | None = "local",
    on_progress: ProgressFn | None = None,
    on_dispatch: Callable[[Any, WorkUnit], None] | None = None,
    on_connect: Callable[[Connection], None] | None = None,
    resolved: ResolvedSweep | None = None,
) -> SweepOutcome:
    """Resolve and plan the sweep (errors before anything is written), connect, run, record the manifest.

    Pass `resolved` (from `resolve(loaded, store.done_keys())`) to reuse a plan already made; the caller then
    runs `check_models_can_start` itself."""
    store = ResultStore(loaded.spec.output_dir)
    checked = resolved is not None  # callers that resolved the sweep also ran check_models_can_start
    resolved = resolved or resolve(loaded, store.done_keys())
    if resolved.plan.rows_remaining == 0:
        return SweepOutcome()
    if not checked:
        check_models_can_start(loaded, resolved, local=is_local(address))
    connection = connect(address)
    if on_connect is not None:
        on_connect(connection)
    check_resources(loaded, resolved, node_gpus(), local=connection.started_local)
    run = {"started": time.time(), "address": connection.address, "sweep_sha256": loaded.sha256}
    store.write_manifest(manifest_for(loaded, resolved, store.manifest(), run))
    driver = Driver(resolved, store, on_progress=on_progress, on_dispatch=on_dispatch)
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
