"""Work lost per failure, counted from the fake engine's token ledger (`FakeEngine(token_ledger=...)`).

Every engine process appends `pid seed tokens time` per chunk of thinking tokens it samples, one `write` each, so
the ledger survives any kill. After a sweep that suffered one failure:

- **generated again** = every thinking token in the ledger − the thinking tokens the store's trajectories hold
  (the longest version of each): what was generated, lost with the failure, and generated a second time;
- **before** = the ledger's tokens before the failure: the work that had been done when it struck;
- **in flight** = the tokens the processes that died had generated, before the failure, for trajectories not yet
  complete: what streaming alone (no checkpoints) must generate again, since a finished group streams out but a
  growing trajectory only reaches the store in a checkpoint;
- **unit-level** (the code before issue 25, for comparison): every thinking token the failed units' attempts had
  generated before the failure, on the processes that died, since a unit's results then reached the store only
  when the whole unit ended and a failed unit was measured again from scratch. Computed from the same ledger,
  for the same failure at the same moment: with one problem per unit, a unit had not ended before the failure
  when its problem's stored rows include one built (`created_at`) after it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from ttscale.forcing import derive_seed
from ttscale.store import ResultStore


@dataclass(frozen=True)
class Entry:
    pid: int
    seed: int
    tokens: int
    time: float


def read_ledger(path: Path) -> list[Entry]:
    if not path.is_file():
        return []
    entries = []
    for line in path.read_text().splitlines():
        pid, seed, tokens, at = line.split()
        entries.append(Entry(int(pid), int(seed), int(tokens), float(at)))
    return entries


@dataclass(frozen=True)
class WorkLost:
    generated_again: int  # thinking tokens generated twice because of the failure
    before: int  # thinking tokens generated before it
    in_flight: int  # of them, on the processes that died, for trajectories still growing
    unit_level: int  # what the code before streaming and checkpoints would have generated again
    actors_lost: int  # engine processes the failure ended
    actor_tokens_per_s: float  # one actor's measured thinking rate

    @property
    def actor_seconds(self) -> float:
        """The tokens generated again as seconds of one actor's generation, per actor the failure ended."""
        return self.generated_again / max(self.actors_lost, 1) / self.actor_tokens_per_s

    @property
    def unit_level_actor_seconds(self) -> float:
        return self.unit_level / max(self.actors_lost, 1) / self.actor_tokens_per_s


def work_lost(ledger: Path, store: ResultStore, failed_at: float, dead: set[int], budget: int) -> WorkLost:
    entries = read_ledger(ledger)
    trajectories = store.read_trajectories().to_pylist()
    stored = sum(t["model_tokens"] for t in trajectories)
    problem_of = {derive_seed(t["rng_seed"], 0): t["problem_id"] for t in trajectories}  # first rounds' seeds
    before = [e for e in entries if e.time < failed_at]
    per_trajectory: dict[int, int] = defaultdict(int)
    for e in before:
        per_trajectory[e.seed] += e.tokens
    growing = {seed for seed, tokens in per_trajectory.items() if tokens < budget}
    rows = store.read_table(["problem_id", "created_at"]).to_pylist()
    unfinished = {r["problem_id"] for r in rows if r["created_at"].timestamp() > failed_at}
    unit_level = sum(e.tokens for e in before if e.pid in dead and problem_of.get(e.seed) in unfinished)
    return WorkLost(
        generated_again=sum(e.tokens for e in entries) - stored,
        before=sum(e.tokens for e in before),
        in_flight=sum(e.tokens for e in before if e.pid in dead and e.seed in growing),
        unit_level=unit_level,
        actors_lost=len(dead),
        actor_tokens_per_s=actor_rate(entries),
    )


def actor_rate(entries: list[Entry]) -> float:
    """Thinking tokens per second of the busiest process over the time it generated (its first to its last line)."""
    by_pid: dict[int, list[Entry]] = defaultdict(list)
    for e in entries:
        by_pid[e.pid].append(e)
    rates = [
        sum(e.tokens for e in es) / (es[-1].time - es[0].time) for es in by_pid.values() if es[-1].time > es[0].time
    ]
    return max(rates, default=1.0)
