"""The actor pools' life: start each model's actors, see them come up, replace lost ones, re-plan and release pools.

One pool per model, all held as one list of slots. Actors wait for their resources in Ray's queue; dispatch
waits until an actor is up (`check_ready`). A finished model's pool is released as soon as its queue is empty
and the pools are re-planned, so its GPUs (or CPUs) go to the models that still have work.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import ray

from ttscale.actors.worker import units_at_once, worker_class
from ttscale.store import ResultStore
from ttscale.sweeps.jobs import Job
from ttscale.sweeps.placement import (
    PlacedActor,
    actor_shape,
    cpu_threads,
    place_actor,
    plan_replicas,
    release_actors,
)
from ttscale.sweeps.plan import engine_options, run_settings

if TYPE_CHECKING:
    from ttscale.sweeps.spec import ModelSpec, SweepSpec

WAITING_PER_ACTOR = 1  # units queued on an actor beyond those it runs, so it never idles between units

__all__ = ["WAITING_PER_ACTOR", "ActorPools", "Slot"]


@dataclass
class Slot:
    """One actor of a model's pool."""

    model: int
    replica: int
    label: str
    actor: PlacedActor
    capacity: int  # units it runs at once + WAITING_PER_ACTOR
    ready_ref: Any = None  # its first `info()`: where it runs; dispatch waits until the actor is up
    ready: bool = False
    in_flight: int = 0
    generation: int = 0
    jobs: list[Job] = field(default_factory=list)  # dispatched, not yet back, in dispatch (= run) order
    running_when_lost: Job | None = None  # the unit that was running when the actor died
    timed_out: Job | None = None  # the unit whose time ran out: the actor was killed for it
    progress_ref: Any = None

    @property
    def handle(self) -> Any:
        return self.actor.handle


class ActorPools:
    """Every model's actors in one run; see the module docstring."""

    def __init__(self, spec: SweepSpec, store: ResultStore) -> None:
        self.spec, self.store = spec, store
        self.slots: list[Slot] = []
        self._generations = 0  # replacement actors get fresh names: the dead one's may linger a moment
        self._resources: dict[str, float] = {}  # the cluster's, read at the start and when pools are re-planned

    def of_model(self, model: int) -> list[Slot]:
        return [s for s in self.slots if s.model == model]

    def start_all(self, units_per_model: list[int]) -> list[int]:
        """Start each model's first pool, sized for its units on the cluster as it is; the replicas per model."""
        self._resources = ray.cluster_resources()
        replicas = plan_replicas(self.spec.models, units_per_model, self._resources)
        for m, n in enumerate(replicas):
            self.slots.extend(self._start(m, r) for r in range(n))
        return replicas

    def ensure_actor(self, model: int) -> None:
        """Start one actor for a model that has none (a retried unit may come back after its pool was released)."""
        if not any(s.model == model for s in self.slots):
            self.slots.append(self._start(model, 0, generation=self._generation()))

    def replace(self, slot: Slot) -> Slot:
        """Release a lost actor and start a fresh one (a new name) in its place."""
        self.stop([slot])
        self.slots.remove(slot)
        fresh = self._start(slot.model, slot.replica, self._generation())
        self.slots.append(fresh)
        return fresh

    def remove_model(self, model: int) -> None:
        """Release every actor of a model, one by one, and forget them."""
        for slot in self.of_model(model):
            self.stop([slot])
            self.slots.remove(slot)

    def stop(self, slots: list[Slot]) -> None:
        """Release the actors together: ready ones first let their engines shut down (see release_actors)."""
        release_actors([s.actor for s in slots if s.ready], graceful=True)
        release_actors([s.actor for s in slots if not s.ready], graceful=False)  # dead, or still loading
        for slot in slots:
            if slot.ready:
                self.store.log_event("actor_released", actor=slot.label)

    def check_ready(self, failed_to_start: Callable[[Slot, BaseException], None]) -> None:
        """Mark actors whose first `info()` came back, and record where each runs (node, GPUs, placement group,
        the engine's own processes) in the run's events; an actor that died while loading its model goes to
        `failed_to_start` (every actor of its model would fail the same way)."""
        pending = {s.ready_ref: s for s in self.slots if not s.ready and s.ready_ref is not None}
        if not pending:
            return
        ready, _ = ray.wait(list(pending), num_returns=len(pending), timeout=0)
        for ref in ready:
            slot = pending[ref]
            try:
                where = ray.get(ref)
            except ray.exceptions.RayActorError as exc:
                failed_to_start(slot, exc)
                continue
            slot.ready = True
            model = self.spec.models[slot.model]
            self.store.log_event(
                "actor_ready", actor=slot.label, model=model.name, gpus=_gpus(model),
                **{k: where.get(k) for k in ("node_id", "gpu_ids", "placement_group", "engine_placement")},
            )  # fmt: skip

    def release_finished(self, queues: list[deque[Job]]) -> bool:
        """Stop the actors of models with nothing left to do; True when any went."""
        finished = [s for s in self.slots if not queues[s.model] and s.in_flight == 0]
        self.stop(finished)
        for slot in finished:
            self.slots.remove(slot)
        return bool(finished)

    def replan(self, queues: list[deque[Job]], running: Counter[int]) -> None:
        """Start actors up to each model's share of the cluster for the work it still has (queued, and `running`
        units per model); a finished model's resources go to the others. Actors wait for their resources in
        Ray's queue; dispatch waits for them."""
        units = [len(q) + running[m] for m, q in enumerate(queues)]
        self._resources = ray.cluster_resources()
        wanted = plan_replicas(self.spec.models, units, self._resources)
        for m, n in enumerate(wanted):
            slots = self.of_model(m)
            room = sum(s.capacity - s.in_flight for s in slots)  # queued units the pool already has places for
            extra = min(n - len(slots), len(queues[m]) - room)
            if extra <= 0:
                continue  # a new actor would start only to find the last units taken
            have = {s.replica for s in slots}
            free = [r for r in range(n + len(have)) if r not in have][:extra]
            self.slots.extend(self._start(m, r, self._generation()) for r in free)

    def _start(self, model_index: int, replica: int, generation: int = 0) -> Slot:
        model = self.spec.models[model_index]
        threads = cpu_threads(model, self._resources)
        label = f"{self.spec.name}/{model.name}#{replica}" + (f".{generation}" if generation else "")
        actor = place_actor(
            worker_class(model.engine), actor_shape(model, threads=threads), name=label, model=model.name,
            engine=model.engine, engine_options=engine_options(self.spec, model, threads=threads),
            settings=run_settings(self.spec, model), label=label,
        )  # fmt: skip
        slot = Slot(
            model=model_index, replica=replica, label=label, actor=actor, generation=generation,
            capacity=units_at_once(model.engine) + WAITING_PER_ACTOR,
        )  # fmt: skip
        slot.ready_ref = slot.handle.info.remote()
        return slot

    def _generation(self) -> int:
        self._generations += 1
        return self._generations


def _gpus(model: ModelSpec) -> int:
    return model.tensor_parallel if model.on_gpus else 0
