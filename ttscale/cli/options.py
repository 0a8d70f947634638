"""Options several commands share: where Ray runs."""

from __future__ import annotations

from typing import Annotated

import typer

RayAddress = Annotated[
    str, typer.Option(help="local: start a Ray instance here (with dashboard); auto or host:port: join a cluster.")
]
