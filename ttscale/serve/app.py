"""The explorer as a Ray Serve application: one replica, pinned to the node that holds the results directories,
answering HTTP through `Explorer.handle`; `start_explorer` runs it on the Ray instance this process is connected to."""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path

import ray
from ray import serve
from starlette.requests import Request
from starlette.responses import Response

from ttscale.errors import ConfigError
from ttscale.sweeps.placement import connect

APP_NAME = "ttscale-explorer"
WARM_METRICS = ("accuracy", "p_correct")  # curves and emergence computed when the replica starts


@serve.deployment(num_replicas=1, ray_actor_options={"num_cpus": 0})
class ExplorerDeployment:
    """A Serve replica holding the index; heavy analyses run in worker threads so requests keep flowing."""

    def __init__(self, roots: list[str], dashboard_url: str | None, rescan_s: float, n_boot: int, n_sim: int) -> None:
        from ttscale.serve.api import Explorer
        from ttscale.serve.index import ResultsIndex

        index = ResultsIndex(roots, rescan_s=rescan_s, n_boot=n_boot, n_sim=n_sim, background=True)
        self.explorer = Explorer(index, dashboard_url=dashboard_url)
        threading.Thread(target=self._warm, daemon=True, name="explorer-warm").start()

    def _warm(self) -> None:
        """Compute the first page's curves and emergence tables ahead of the first visit (through the queries, so
        each later snapshot recomputes them before it replaces this one)."""
        from ttscale.serve import queries

        snap = self.explorer.index.snapshot()
        pairs = queries.options(snap)["pairs"]
        for metric in WARM_METRICS:
            try:
                if pairs:
                    queries.curve(snap, *pairs[0], metric)
                queries.emergence(snap, metric)
            except Exception:  # a metric these rows lack: the page asks for another
                logging.getLogger(__name__).debug("warm-up of %s skipped", metric, exc_info=True)

    async def __call__(self, request: Request) -> Response:
        reply = await asyncio.to_thread(
            self.explorer.handle, request.method, request.url.path, dict(request.query_params)
        )
        body = b"" if request.method == "HEAD" else reply.body
        return Response(body, status_code=reply.status, media_type=reply.media_type, headers=reply.headers)


def serve_results(
    results_dirs: list[Path], *, host: str = "127.0.0.1", port: int = 8000, address: str = "local"
) -> tuple[str, str | None]:
    """What `ttscale serve` does: connect to Ray (`address` as `ttscale sweep` takes it) and start the explorer over
    existing results directories; returns its URL and the Ray dashboard's."""
    for root in results_dirs:
        if not Path(root).is_dir():
            raise ConfigError(f"Got '{root}' for RESULTS_DIR. It is not a directory; give a ttscale results dir.")
    connection = connect(address)
    url = start_explorer(results_dirs, host=host, port=port, dashboard_url=connection.dashboard_url)
    return url, connection.dashboard_url


def start_explorer(
    roots: list[str | Path], *, host: str = "127.0.0.1", port: int = 8000, dashboard_url: str | None = None,
    rescan_s: float = 2.0, n_boot: int = 1000, n_sim: int = 200,
) -> str:  # fmt: skip
    """Start Serve's HTTP proxy on host:port and deploy the explorer over `roots`; returns its URL.

    The replica asks for no CPU (it sits beside a sweep's actors) and is pinned to this node, where the
    results directories are."""
    resolved = [str(Path(r).resolve()) for r in roots]
    serve.start(http_options={"host": host, "port": port})
    node = f"node:{ray.util.get_node_ip_address()}"
    deployment = ExplorerDeployment.options(ray_actor_options={"num_cpus": 0, "resources": {node: 0.001}})
    serve.run(
        deployment.bind(resolved, dashboard_url, rescan_s, n_boot, n_sim), name=APP_NAME, route_prefix="/",
        blocking=False,
    )  # fmt: skip
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    return f"http://{shown}:{port}/"


def stop_explorer() -> None:
    """Remove the explorer and stop Serve (its proxy and controller) on this Ray instance."""
    serve.shutdown()
