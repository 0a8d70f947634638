"""The explorer's routes, free of Ray: a GET request (path and query) becomes a `Reply`; the Serve deployment and the
tests both call `Explorer.handle`. Read-only: every other method is refused, and files resolve inside their roots."""

from __future__ import annotations

import json
import mimetypes
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from ttscale.analysis.emergence import MIN_RANGE
from ttscale.errors import TtscaleError
from ttscale.serve import queries
from ttscale.serve.index import NotFound, ResultsIndex
from ttscale.serve.progress import progress

STATIC = Path(__file__).parent / "static"
CACHED_BYTES = 8 * 2**20  # files up to this size are kept in memory (plotly.min.js is ~4.6 MiB)


@dataclass
class Reply:
    """An HTTP answer: status, media type and body."""

    status: int
    media_type: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, obj: Any, status: int = 200) -> Reply:
        return cls(status, "application/json", json.dumps(obj, allow_nan=False, default=str).encode())

    @classmethod
    def error(cls, status: int, message: str) -> Reply:
        return cls.json({"error": message}, status)


class Explorer:
    """The app: an index over the results directories, and the Ray dashboard's address to link to."""

    def __init__(self, index: ResultsIndex, *, dashboard_url: str | None = None) -> None:
        self.index = index
        self.dashboard_url = dashboard_url
        self.started = time.time()

    def handle(self, method: str, path: str, params: dict[str, str]) -> Reply:
        """Answer one request; NotFound (and any path outside the app) is 404, a bad parameter 400."""
        if method not in ("GET", "HEAD"):
            return Reply.error(405, "the explorer is read-only: only GET")
        try:
            return self._route(unquote(path), params)
        except NotFound as exc:
            return Reply.error(404, str(exc))
        except KeyError as exc:
            return Reply.error(400, f"missing parameter {exc}")
        except (TtscaleError, ValueError) as exc:
            return Reply.error(400, str(exc))
        except Exception as exc:  # one line, never a traceback (nor anything a traceback's locals could show)
            return Reply.error(500, f"{type(exc).__name__}: {str(exc)[:300]}")

    def _route(self, path: str, p: dict[str, str]) -> Reply:
        if path in ("", "/", "/index.html"):
            return static_file("index.html")
        if path.startswith("/static/"):
            return static_file(path.removeprefix("/static/"))
        if path.startswith("/api/runs/") and "/files/" in path:
            run, _, relative = path.removeprefix("/api/runs/").partition("/files/")
            return self._file(run, relative)
        handlers = {
            "/api/info": lambda: self._info(),
            "/api/runs": lambda: self._runs(),
            "/api/options": lambda: queries.options(self.index.snapshot()),
            "/api/curve": lambda: queries.curve(self.index.snapshot(), p["model"], p["dataset"],
                                                p.get("metric", "p_correct")),
            "/api/compute": lambda: queries.compute(self.index.snapshot(), p["model"], p["dataset"],
                                                    p.get("metric", "maj")),
            "/api/emergence": lambda: queries.emergence(
                self.index.snapshot(), p.get("metric", "p_correct"), by=p.get("by", "breakthroughness"),
                ascending=_flag(p.get("ascending")), level=p.get("level", "problem"), model=p.get("model") or None,
                dataset=p.get("dataset") or None, limit=int(p.get("limit", 50)), offset=int(p.get("offset", 0)),
                complete_only=not _flag(p.get("all")), ranking=p.get("ranking", "reviewed"),
                min_range=float(p.get("min_range", MIN_RANGE)),
            ),
            "/api/problem": lambda: queries.problem(
                self.index, self.index.snapshot(), p["model"], p["dataset"], p["problem_id"],
                metric=p.get("metric", "p_correct"), seed=int(p["seed"]) if p.get("seed") else None,
            ),
            "/api/progress": lambda: progress(self.index, self.index.snapshot()),
        }  # fmt: skip
        if path not in handlers:
            raise NotFound(f"no such page: {path}")
        return Reply.json(handlers[path]())

    def _info(self) -> dict[str, Any]:
        import ttscale

        return {"dashboard_url": self.dashboard_url, "ttscale_version": ttscale.__version__,
                "runs": list(self.index.runs), "started": self.started}  # fmt: skip

    def _runs(self) -> list[dict[str, Any]]:
        out = []
        for run in self.index.runs.values():
            manifest = run.store.manifest() or {}
            out.append({
                "name": run.name, "root": str(run.store.root), "sweep": manifest.get("sweep_name"),
                "datasets": [d["name"] for d in manifest.get("datasets", [])], "runs": len(manifest.get("runs", [])),
                "shards": len(run.frames), "rows": int(sum(len(f) for f in run.frames.values())),
                "unreadable_shards": sorted(run.unreadable),
                "report": "analysis/report.html" if (run.store.root / "analysis" / "report.html").is_file() else None,
            })  # fmt: skip
        return out

    def _file(self, run: str, relative: str) -> Reply:
        """A file of a results directory (the static report, a table), resolved inside it: anything else is 404."""
        return file_reply(inside(self.index.run(run).store.root, relative))


def inside(root: Path, relative: str) -> Path:
    """`root/relative` if it is a file inside `root` once links and `..` are resolved; NotFound otherwise."""
    base = root.resolve()
    try:
        target = (base / relative).resolve()
    except (OSError, RuntimeError, ValueError):  # a link loop, a NUL byte
        raise NotFound(f"no such file: {relative}") from None
    if not target.is_relative_to(base) or target == base or not target.is_file():
        raise NotFound(f"no such file: {relative}")
    return target


def static_file(name: str) -> Reply:
    """A file of the page (from ttscale/serve/static), or plotly.js from the installed plotly package."""
    if name == "plotly.min.js":
        return file_reply(_plotly_js(), cache=True)
    return file_reply(inside(STATIC, name), cache=False)


@lru_cache(maxsize=1)
def _plotly_js() -> Path:
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def file_reply(path: Path, cache: bool = False) -> Reply:
    media = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if media.startswith("text/") or media in ("application/javascript", "application/json"):
        media += "; charset=utf-8"
    headers = {"Cache-Control": "max-age=86400" if cache else "no-cache"}
    stat = path.stat()
    body = _read(path, stat.st_mtime_ns) if stat.st_size <= CACHED_BYTES else path.read_bytes()
    return Reply(200, media, body, headers)


@lru_cache(maxsize=8)
def _read(path: Path, mtime_ns: int) -> bytes:
    """A small file's bytes, kept while its modification time stays the same (plotly.js, the page)."""
    return path.read_bytes()


def _flag(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true", "yes", "on")
