"""Check that a refactor changed nothing: rows, reports and the explorer's API give identical output on the demo.

    python scripts/check_equivalence.py BEFORE_DIR AFTER_DIR [--before-code CHECKOUT] [--after-code CHECKOUT]
    python scripts/check_equivalence.py BEFORE_DIR --run-after [--before-code CHECKOUT]

BEFORE_DIR and AFTER_DIR are results directories of the same sweep (the demo). Compared, one line each:

  rows          every rows/*.parquet shard, sorted by (cell_id, problem_id): schema and values, floats exactly
  units         which rows each work unit wrote (the shard names' unit ids; the random suffix is ignored)
  trajectories  every trajectories/*.parquet shard, sorted by trajectory id: schema and values
  manifest      the datasets' identities, the engines and the runs' counts (not paths, times or the sweep text)
  report/*      `ttscale analyze --out` of each directory: every table (Parquet by value, CSV by text) and
                report.html, with the results directory's path replaced by a placeholder; and the JSON of
                `ttscale analyze --json` where both sides' CLI has that option
  explorer/*    the explorer's JSON API (options, runs, curves, emergence pages, problems, a few errors)
                answered in process by `ttscale.serve.api.Explorer.handle`, no Ray Serve

The report and the explorer of each side are produced by that side's code: each runs in a subprocess with the
side's checkout first on PYTHONPATH (--before-code, --after-code; both default to the checkout holding this
script). Give --before-code the baseline's checkout (a `git worktree` of the commit before the refactor), or a
change to the analysis or the explorer would show on both sides alike and pass.

--run-after first runs the demo sweep with the after code (`ttscale sweep` of --sweep, default sweeps/demo.yaml
of the after checkout, with output_dir pointed into a temporary directory, or to AFTER_DIR when given).

Exit status: 0 identical, 1 something differs (each artefact's line shows its first difference), 2 the check
itself could not run (a sweep or analysis failed, the explorer could not be imported).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent.parent  # the checkout holding this script

# Row columns that legitimately differ between two runs of the same code, left out of the comparison:
IGNORED_ROW_COLUMNS = (
    # wall-clock timings of the work that produced the row: they vary from run to run with the machine's load
    "trajectory_seconds",
    "answer_seconds",
    "score_seconds",
    # when the row was written
    "created_at",
    # the package's version string: a refactor may bump it without changing a single number
    "ttscale_version",
)
# Not left out, on purpose: engine_version and model_path (the same venv gives the same strings; a different
# torch or model is a different measurement, not a refactor), rng_seed, cell_id and trajectory_id (derived from
# the sweep's settings, never from paths or times), config (the model's settings as JSON).
IGNORED_TRAJECTORY_COLUMNS: tuple[str, ...] = ()  # a trajectory holds no timing, path or timestamp
ROW_KEY = ("cell_id", "problem_id")
TRAJECTORY_KEY = ("trajectory_id", "model_tokens", "text")  # a resumed trajectory may be stored twice, longer

# manifest.json: compared without what names a path or a time, or varies with where the sweep file was:
# sweep_path and sweep_text (its output_dir differs with --run-after), sweep_sha256 (of that text), ttscale_version
# (as for rows), runs[].started/finished (times), runs[].address (Ray's address: its port is random).
IGNORED_MANIFEST_KEYS = ("sweep_path", "sweep_text", "sweep_sha256", "ttscale_version")
IGNORED_MANIFEST_RUN_KEYS = ("started", "finished", "address", "sweep_text", "sweep_sha256")

# Explorer JSON keys that are times ("started", "built_at"); paths are replaced by placeholders instead.
IGNORED_JSON_KEYS = ("started", "built_at")
ROOT_PLACEHOLDER = "<RESULTS_DIR>"
OUT_PLACEHOLDER = "<REPORT_DIR>"
RUN_PLACEHOLDER = "<RUN>"

EXPLORER_IMPORT_HELP = (
    "the explorer's request handler is imported as `from ttscale.serve.api import Explorer` and its index as "
    "`ttscale.serve.api.ResultsIndex` (else `ttscale.serve.index.ResultsIndex`); if the refactor moved them, "
    "update explorer_dump() in scripts/check_equivalence.py"
)


class Different(Exception):
    """The first difference found in one artefact."""


class CannotRun(Exception):
    """The check itself failed (a sweep, an analysis or an import): exit 2."""


# -- comparing values ------------------------------------------------------------------------------------------


def same(a: Any, b: Any) -> bool:
    """Exact equality of plain values, NaN equal to NaN, recursing into lists and dicts."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def first_json_difference(a: Any, b: Any, where: str = "") -> str | None:
    """Where two JSON values first differ (a path like `.rows[3].p_breakthroughness`), or None."""
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            only_b, only_a = sorted(a.keys() - b.keys()), sorted(b.keys() - a.keys())
            return f"{where or '.'}: keys only before {only_b}, only after {only_a}"
        for k in a:
            found = first_json_difference(a[k], b[k], f"{where}.{k}")
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{where or '.'}: {len(a)} items before, {len(b)} after"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            found = first_json_difference(x, y, f"{where}[{i}]")
            if found:
                return found
        return None
    return None if same(a, b) else f"{where or '.'}: before {short(a)}, after {short(b)}"


def short(value: Any, n: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= n else text[: n - 3] + "..."


def replace_strings(value: Any, substrings: dict[str, str]) -> Any:
    """`value` with every occurrence of a key of `substrings` in its strings replaced by its value, and the keys in
    IGNORED_JSON_KEYS dropped."""
    if isinstance(value, dict):
        return {k: replace_strings(v, substrings) for k, v in value.items() if k not in IGNORED_JSON_KEYS}
    if isinstance(value, list):
        return [replace_strings(v, substrings) for v in value]
    if isinstance(value, str):
        for old, new in substrings.items():
            value = value.replace(old, new)
    return value


def path_forms(path: Path) -> list[str]:
    """The spellings of a directory that outputs may hold, longest first (resolved, absolute, as given)."""
    forms = {str(path.resolve()), str(path.absolute()), str(path)}
    return sorted((f for f in forms if f not in ("", ".")), key=len, reverse=True)


# -- Arrow tables ------------------------------------------------------------------------------------------------


def read_shards(directory: Path) -> tuple[pa.Table | None, list[Path]]:
    """Every Parquet shard of a directory as one table (None when there are none), and the shards."""
    paths = sorted(directory.glob("*.parquet")) if directory.is_dir() else []
    if not paths:
        return None, paths
    tables = [pq.read_table(p) for p in paths]
    first = tables[0].schema
    for path, table in zip(paths, tables, strict=True):
        if not table.schema.equals(first, check_metadata=False):
            raise Different(f"{path} has another schema than {paths[0]} in the same directory")
    return pa.concat_tables(tables), paths


def compare_tables(
    before: pa.Table, after: pa.Table, *, key: tuple[str, ...] | None, ignored: tuple[str, ...] = ()
) -> str:
    """Raise Different at the first difference of schema or value; sort by `key` first (None: keep the order).
    Returns a summary of what was compared."""
    dropped = [c for c in ignored if c in before.column_names or c in after.column_names]
    before = before.drop_columns([c for c in dropped if c in before.column_names])
    after = after.drop_columns([c for c in dropped if c in after.column_names])
    if not before.schema.equals(after.schema, check_metadata=False):
        names_b, names_a = before.schema.names, after.schema.names
        if names_b != names_a:
            raise Different(
                f"columns differ: only before {[c for c in names_b if c not in names_a]}, only after "
                f"{[c for c in names_a if c not in names_b]}, order before {names_b} after {names_a}"
            )
        for fb, fa in zip(before.schema, after.schema, strict=True):
            if not fb.equals(fa, check_metadata=False):
                raise Different(f"column {fb.name}: schema {fb} before, {fa} after")
    if not before.schema.equals(after.schema, check_metadata=True):
        raise Different(f"schema metadata differs: before {before.schema.metadata}, after {after.schema.metadata}")
    if before.num_rows != after.num_rows:
        raise Different(f"{before.num_rows} rows before, {after.num_rows} after")
    if key is not None:
        before, after = _sorted_unique(before, key, "before"), _sorted_unique(after, key, "after")
    for name in before.column_names:
        col_b, col_a = before.column(name), after.column(name)
        if col_b.equals(col_a):
            continue
        values_b, values_a = col_b.to_pylist(), col_a.to_pylist()
        for i, (vb, va) in enumerate(zip(values_b, values_a, strict=True)):
            if not same(vb, va):
                at = ", ".join(f"{k}={before.column(k)[i].as_py()!r}" for k in key) if key else f"row {i}"
                raise Different(f"column {name} at {at}: before {short(vb)}, after {short(va)}")
    return f"{before.num_rows} rows × {before.num_columns} columns identical" + (
        f" (left out: {', '.join(dropped)})" if dropped else ""
    )


def _sorted_unique(table: pa.Table, key: tuple[str, ...], side: str) -> pa.Table:
    table = table.sort_by([(k, "ascending") for k in key])
    keys = list(zip(*(table.column(k).to_pylist() for k in key), strict=True))
    for i in range(1, len(keys)):
        if keys[i] == keys[i - 1]:
            raise Different(f"{side}: the key {dict(zip(key, keys[i], strict=True))} is stored twice")
    return table


# -- the artefacts -----------------------------------------------------------------------------------------------


def check_rows(before: Path, after: Path) -> str:
    tb, paths_b = read_shards(before / "rows")
    ta, paths_a = read_shards(after / "rows")
    if tb is None or ta is None:
        raise Different(f"no rows shards: {len(paths_b)} before, {len(paths_a)} after")
    return compare_tables(tb, ta, key=ROW_KEY, ignored=IGNORED_ROW_COLUMNS) + f"; {len(paths_b)} shards"


def check_units(before: Path, after: Path) -> str:
    """Which rows each unit wrote: shard names are `<unit id>-<random>.parquet`, so only the unit id is compared."""

    def units(root: Path) -> dict[str, list[tuple[str, str]]]:
        out: dict[str, list[tuple[str, str]]] = {}
        for path in sorted((root / "rows").glob("*.parquet")):
            unit = path.stem.rsplit("-", 1)[0]
            t = pq.read_table(path, columns=list(ROW_KEY))
            out.setdefault(unit, []).extend(zip(*(t.column(k).to_pylist() for k in ROW_KEY), strict=True))
        return {u: sorted(keys) for u, keys in out.items()}

    ub, ua = units(before), units(after)
    if ub.keys() != ua.keys():
        raise Different(
            f"unit ids: only before {sorted(ub.keys() - ua.keys())}, only after {sorted(ua.keys() - ub.keys())}"
        )
    for unit in ub:
        if ub[unit] != ua[unit]:
            raise Different(f"unit {unit} holds other rows: {len(ub[unit])} before, {len(ua[unit])} after")
    return f"{len(ub)} units identical"


def check_trajectories(before: Path, after: Path) -> str:
    tb, paths_b = read_shards(before / "trajectories")
    ta, paths_a = read_shards(after / "trajectories")
    if tb is None and ta is None:
        return "none on either side (independent mode)"
    if tb is None or ta is None:
        raise Different(f"trajectory shards: {len(paths_b)} before, {len(paths_a)} after")
    return compare_tables(tb, ta, key=TRAJECTORY_KEY, ignored=IGNORED_TRAJECTORY_COLUMNS)


def check_manifest(before: Path, after: Path) -> str:
    def load(root: Path) -> dict[str, Any]:
        path = root / "manifest.json"
        if not path.is_file():
            raise Different(f"{path} is missing")
        m = json.loads(path.read_text())
        m = {k: v for k, v in m.items() if k not in IGNORED_MANIFEST_KEYS}
        m["runs"] = [{k: v for k, v in r.items() if k not in IGNORED_MANIFEST_RUN_KEYS} for r in m.get("runs", [])]
        return m

    found = first_json_difference(load(before), load(after))
    if found:
        raise Different(found)
    return "identical (left out: paths, times, the sweep text and its hash, the version string)"


# -- running the library of one side ------------------------------------------------------------------------------


def side_env(code: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(code), *filter(None, [env.get("PYTHONPATH")])])
    return env


def check_code(python: str, code: Path) -> None:
    """`import ttscale` under `code`'s PYTHONPATH must load that checkout's package, not an installed one."""
    proc = subprocess.run([python, "-c", "import ttscale; print(ttscale.__file__)"], cwd=code, env=side_env(code),
                          capture_output=True, text=True)  # fmt: skip
    if proc.returncode != 0:
        raise CannotRun(f"`import ttscale` fails with {code} on PYTHONPATH: {proc.stderr.strip()[-500:]}")
    loaded = Path(proc.stdout.strip()).resolve()
    if not loaded.is_relative_to(code.resolve()):
        raise CannotRun(f"with {code} on PYTHONPATH, `import ttscale` loads {loaded}: not that checkout's code")


def cli_entry(code: Path) -> str:
    """The `ttscale` console script's "module:function" as the checkout's pyproject.toml declares it (the installed
    script may predate a move of the CLI module)."""
    import tomllib

    try:
        scripts = tomllib.loads((code / "pyproject.toml").read_text())["project"]["scripts"]
        return scripts["ttscale"]
    except (OSError, KeyError, ValueError):
        return "ttscale.cli:main"


def run_cli(python: str, code: Path, *args: str, capture: bool = True) -> subprocess.CompletedProcess:
    """`ttscale ARGS...` with `code`'s package, in `code` as the working directory."""
    module, _, function = cli_entry(code).partition(":")
    launcher = (
        "import sys; from importlib import import_module; "
        f"sys.argv = ['ttscale', *sys.argv[1:]]; import_module({module!r}).{function}()"
    )
    return subprocess.run([python, "-c", launcher, *args], cwd=code, env=side_env(code), capture_output=capture,
                          text=True)  # fmt: skip


def run_sweep(python: str, code: Path, sweep: Path, output_dir: Path, workdir: Path) -> float:
    """Run `sweep` with `code`'s package, its output_dir replaced by `output_dir`; returns the seconds it took."""
    text = sweep.read_text()
    line = f"output_dir: {json.dumps(str(output_dir))}"
    text, n = re.subn(r"(?m)^output_dir:.*$", lambda _: line, text)
    if n != 1:
        raise CannotRun(f"{sweep} has no top-level `output_dir:` line to point at {output_dir}")
    copy = workdir / sweep.name
    copy.write_text(text)
    print(f"running the sweep {sweep} with {code}'s code into {output_dir} ...", flush=True)
    start = time.perf_counter()
    proc = run_cli(python, code, "sweep", str(copy), capture=False)
    if proc.returncode != 0:
        raise CannotRun(f"`ttscale sweep {copy}` exited with {proc.returncode}")
    return time.perf_counter() - start


def analyze(python: str, code: Path, results: Path, out: Path) -> dict[str, Any] | None:
    """`ttscale analyze RESULTS --out OUT` with `code`'s package; the JSON of `--json` when its CLI has it."""
    proc = run_cli(python, code, "analyze", str(results), "--out", str(out))
    if proc.returncode != 0:
        raise CannotRun(f"`ttscale analyze {results}` with {code} exited {proc.returncode}: {proc.stderr[-1500:]}")
    helptext = run_cli(python, code, "analyze", "--help").stdout
    if not re.search(r"--json\b", helptext):
        return None
    proc = run_cli(python, code, "analyze", str(results), "--out", str(out.with_name(out.name + "-json")), "--json")
    if proc.returncode != 0:
        raise CannotRun(f"`ttscale analyze {results} --json` exited {proc.returncode}: {proc.stderr[-1500:]}")
    return json.loads(proc.stdout)


def check_report_files(before: Path, after: Path, roots: tuple[Path, Path]) -> list[tuple[str, str, bool]]:
    """(artefact, summary, identical) per file of the two analysis directories; Different when their files differ."""
    names_b = sorted(p.name for p in before.iterdir() if p.is_file())
    names_a = sorted(p.name for p in after.iterdir() if p.is_file())
    if names_b != names_a:
        raise Different(f"files: only before {sorted(set(names_b) - set(names_a))}, only after "
                        f"{sorted(set(names_a) - set(names_b))}")  # fmt: skip
    out = []
    for name in names_b:
        pb, pa_ = before / name, after / name
        try:
            if name.endswith(".parquet"):
                summary = compare_tables(pq.read_table(pb), pq.read_table(pa_), key=None)
            else:
                tb = _placeholders(pb.read_text(), roots[0], before)
                ta = _placeholders(pa_.read_text(), roots[1], after)
                if tb != ta:
                    i = next((i for i, (x, y) in enumerate(zip(tb, ta, strict=False)) if x != y), min(len(tb), len(ta)))
                    line, column = tb.count("\n", 0, i) + 1, i - (tb.rfind("\n", 0, i) + 1) + 1
                    raise Different(f"line {line}, column {column}: before …{tb[max(0, i - 40) : i + 40]!r}…, after "
                                    f"…{ta[max(0, i - 40) : i + 40]!r}…")  # fmt: skip
                summary = f"identical text ({len(tb):,} characters; paths replaced)"
        except Different as exc:
            out.append((f"report/{name}", str(exc), False))
            continue
        out.append((f"report/{name}", summary, True))
    return out


def _placeholders(text: str, root: Path, out: Path) -> str:
    for form in path_forms(out):
        text = text.replace(form, OUT_PLACEHOLDER)
    for form in path_forms(root):
        text = text.replace(form, ROOT_PLACEHOLDER)
    return text


# -- the explorer --------------------------------------------------------------------------------------------------


def explorer_requests(options: dict[str, Any], problems: list[tuple[str, str, str, int]]) -> list[tuple[str, dict]]:
    """The requests whose answers are compared: built from the options and the rows' problems, so both sides
    get the same list."""
    metrics = [m["name"] for m in options.get("metrics", [])]
    pairs = [tuple(p) for p in options.get("pairs", [])]
    reqs: list[tuple[str, dict]] = [("/api/runs", {})]
    for model, dataset in pairs:
        for metric in metrics:
            reqs.append(("/api/curve", {"model": model, "dataset": dataset, "metric": metric}))
    for metric in metrics:
        for level in ("problem", "dataset"):
            for ranking in ("reviewed", "score"):
                reqs.append(("/api/emergence", {"metric": metric, "level": level, "ranking": ranking, "limit": "500"}))
            reqs.append(("/api/emergence", {"metric": metric, "level": level, "all": "1", "limit": "500"}))
    reqs.append(("/api/emergence", {"by": "p_breakthroughness", "ranking": "score", "limit": "500"}))
    reqs.append(("/api/emergence", {"by": "jump_budget", "ascending": "1", "ranking": "score", "limit": "3",
                                    "offset": "2"}))  # fmt: skip
    for model, dataset, problem_id, seed in problems:
        reqs.append(("/api/problem", {"model": model, "dataset": dataset, "problem_id": problem_id,
                                      "seed": str(seed)}))  # fmt: skip
    for model, dataset, problem_id in dict.fromkeys(p[:3] for p in problems):
        reqs.append(("/api/problem", {"model": model, "dataset": dataset, "problem_id": problem_id,
                                      "metric": "accuracy"}))  # fmt: skip
    # errors: their status and message are part of the API too
    reqs += [("/api/curve", {"model": "no-such-model", "dataset": "no-such-dataset"}),
             ("/api/curve", {"model": pairs[0][0], "dataset": pairs[0][1], "metric": "nonsense"}) if pairs else None,
             ("/api/emergence", {"by": "no_such_column"}), ("/api/emergence", {"ranking": "best"}),
             ("/api/problem", {"model": "m", "dataset": "d", "problem_id": "nope"})]  # fmt: skip
    return [r for r in reqs if r is not None]


def explorer_dump(results: Path, out: Path) -> None:
    """(Run in a subprocess under one side's code.) Every request's status and JSON answer, written to `out`."""
    try:
        from ttscale.serve import api
    except ImportError as exc:
        raise SystemExit(f"error: cannot import ttscale.serve.api ({exc}); {EXPLORER_IMPORT_HELP}") from None
    index_class = getattr(api, "ResultsIndex", None)
    if index_class is None:
        try:
            from ttscale.serve.index import ResultsIndex as index_class
        except ImportError as exc:
            raise SystemExit(
                f"error: cannot import the explorer's ResultsIndex ({exc}); {EXPLORER_IMPORT_HELP}"
            ) from None
    if not hasattr(api, "Explorer"):
        raise SystemExit(f"error: ttscale.serve.api has no Explorer; {EXPLORER_IMPORT_HELP}")
    explorer = api.Explorer(index_class([results]))  # the index's own n_boot and n_sim, as `ttscale serve`

    def get(path: str, params: dict) -> dict[str, Any]:
        reply = explorer.handle("GET", path, params)
        body = json.loads(reply.body) if reply.media_type.startswith("application/json") else reply.body.decode()
        return {"status": reply.status, "body": body}

    options = get("/api/options", {})
    if options["status"] != 200:
        raise SystemExit(f"error: /api/options answered {options['status']}: {options['body']}")
    columns = ["model", "dataset", "problem_id", "seed"]
    shards = sorted((results / "rows").glob("*.parquet"))
    problems = sorted({tuple(r.values()) for p in shards for r in pq.read_table(p, columns=columns).to_pylist()})
    answers = {"/api/options": options}
    for path, params in explorer_requests(options["body"], problems):
        answers[path + "?" + "&".join(f"{k}={v}" for k, v in sorted(params.items()))] = get(path, params)
    for run in answers["/api/runs?"]["body"] if answers["/api/runs?"]["status"] == 200 else []:
        run["name"] = RUN_PLACEHOLDER  # the directory's name, as a URL segment: AFTER_DIR may be named otherwise
    answers = replace_strings(answers, dict.fromkeys(path_forms(results), ROOT_PLACEHOLDER))
    out.write_text(json.dumps(answers, indent=1, sort_keys=True))


def check_explorer(python: str, sides: list[tuple[Path, Path]], workdir: Path) -> list[tuple[str, str, bool]]:
    """(artefact, summary, identical) per endpoint; raises Different when the two sides were asked different things."""
    dumps = []
    for i, (code, results) in enumerate(sides):
        out = workdir / f"explorer-{i}.json"
        proc = subprocess.run([python, str(Path(__file__).resolve()), "--dump-explorer", str(results), str(out)],
                              cwd=code, env=side_env(code), capture_output=True, text=True)  # fmt: skip
        if proc.returncode != 0:
            raise CannotRun(f"the explorer of {code} on {results} failed: {proc.stderr.strip()[-1500:]}")
        dumps.append(json.loads(out.read_text()))
    before, after = dumps
    if before.keys() != after.keys():  # the same options give the same requests: a difference is in /api/options
        found = first_json_difference(before.get("/api/options"), after.get("/api/options"))
        raise Different(f"other requests were made: /api/options {found or 'is the same'}")
    note = ""
    reports = [(results / "analysis" / "report.html").is_file() for _, results in sides]
    if reports[0] != reports[1]:  # /api/runs links RESULTS_DIR/analysis/report.html when someone wrote it there
        for dump in dumps:
            for run in dump["/api/runs?"]["body"] if dump["/api/runs?"]["status"] == 200 else []:
                run.pop("report", None)
        note = "; `report` left out: only one directory holds analysis/report.html"
    lines, groups = [], {}
    for request in before:
        groups.setdefault(request.split("?")[0], []).append(request)
    for path, requests in groups.items():
        found = next((f"{r}: {d}" for r in requests if (d := first_json_difference(before[r], after[r]))), None)
        statuses = ", ".join(map(str, sorted({before[r]["status"] for r in requests})))
        summary = found or f"{len(requests)} answers identical (status {statuses}){note if path == '/api/runs' else ''}"
        lines.append((f"explorer{path}", summary, found is None))
    return lines


# -- main ----------------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["--dump-explorer"]:
        explorer_dump(Path(argv[1]).resolve(), Path(argv[2]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog="See the module docstring.")
    parser.add_argument("before", type=Path, metavar="BEFORE_DIR", help="results directory made by the old code")
    parser.add_argument("after", type=Path, metavar="AFTER_DIR", nargs="?", help="results directory of the new code")
    parser.add_argument(
        "--run-after",
        action="store_true",
        help="first run the sweep with the after code (into AFTER_DIR, else a temporary directory)",
    )
    parser.add_argument(
        "--sweep", type=Path, help="the sweep --run-after runs (default: sweeps/demo.yaml of the after checkout)"
    )
    parser.add_argument(
        "--before-code",
        type=Path,
        default=HERE,
        help="checkout whose ttscale analyses and serves BEFORE_DIR (default: %(default)s)",
    )
    parser.add_argument(
        "--after-code",
        type=Path,
        default=HERE,
        help="checkout whose ttscale runs --run-after and analyses and serves AFTER_DIR (default: %(default)s)",
    )
    parser.add_argument("--python", default=sys.executable, help="interpreter of both sides (default: this one)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (reports, explorer JSON)")
    args = parser.parse_args(argv)  # fmt: skip
    if args.after is None and not args.run_after:
        parser.error("give AFTER_DIR, or --run-after")
    before_code, after_code = args.before_code.resolve(), args.after_code.resolve()
    workdir = Path(tempfile.mkdtemp(prefix="ttscale-equivalence-"))
    started = time.perf_counter()
    failed = False

    def line(artefact: str, summary: str, ok: bool = True) -> None:
        print(f"{'ok  ' if ok else 'DIFF'}  {artefact:<34} {summary}", flush=True)

    try:
        for code in dict.fromkeys([before_code, after_code]):
            check_code(args.python, code)
        before = args.before.resolve()
        if not (before / "rows").is_dir():
            raise CannotRun(f"{before} has no rows/: not a results directory")
        if args.run_after:
            after = (args.after or workdir / "after" / before.name).resolve()
            if after.exists() and any(after.iterdir()):
                raise CannotRun(f"{after} is not empty: --run-after writes a fresh results directory")
            sweep = (args.sweep or after_code / "sweeps" / "demo.yaml").resolve()
            seconds = run_sweep(args.python, after_code, sweep, after, workdir)
            print(f"sweep finished in {seconds:.0f} s", flush=True)
        else:
            after = args.after.resolve()
        if not (after / "rows").is_dir():
            raise CannotRun(f"{after} has no rows/: not a results directory")
        print(f"before: {before} (code: {before_code})\nafter:  {after} (code: {after_code})", flush=True)
        if before_code == after_code:
            print(
                "note: both sides use the same code, so the report and the explorer check what the rows change, "
                "not the code; give --before-code the baseline's checkout to check the code too",
                flush=True,
            )

        for artefact, check in (("rows", check_rows), ("units", check_units), ("trajectories", check_trajectories),
                                ("manifest", check_manifest)):  # fmt: skip
            try:
                line(artefact, check(before, after))
            except Different as exc:
                line(artefact, str(exc), ok=False)
                failed = True

        reports = workdir / "report-before", workdir / "report-after"
        json_b = analyze(args.python, before_code, before, reports[0])
        json_a = analyze(args.python, after_code, after, reports[1])
        try:
            for artefact, summary, ok in check_report_files(*reports, roots=(before, after)):
                line(artefact, summary, ok)
                failed |= not ok
        except Different as exc:
            line("report", str(exc), ok=False)
            failed = True
        if json_b is None or json_a is None:
            have = "neither side's" if json_b is None and json_a is None else "only one side's"
            line("report --json", f"not compared: {have} `ttscale analyze` has --json")
        else:
            subs = [dict.fromkeys(path_forms(r), ROOT_PLACEHOLDER) | dict.fromkeys(path_forms(o), OUT_PLACEHOLDER)
                    for r, o in ((before, reports[0]), (after, reports[1]))]  # fmt: skip
            found = first_json_difference(replace_strings(json_b, subs[0]), replace_strings(json_a, subs[1]))
            line("report --json", found or "identical (paths replaced, times left out)", ok=not found)
            failed |= bool(found)

        try:
            for artefact, summary, ok in check_explorer(
                args.python, [(before_code, before), (after_code, after)], workdir
            ):
                line(artefact, summary, ok)
                failed |= not ok
        except Different as exc:
            line("explorer", str(exc), ok=False)
            failed = True
    except CannotRun as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        if args.keep:
            print(f"kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"{'DIFFERENT' if failed else 'IDENTICAL'} in {time.perf_counter() - started:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
