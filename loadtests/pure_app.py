"""The true baseline of `voting bench`: a pure Starlette application, one JSON route, no
middleware, served by uvicorn with uvloop and httptools, as many workers as the engine.

What the engine's vote costs is read against this: the fastest answer the same framework
and server give on this machine, with nothing of the engine in it. (The engine's own
`/livez` runs through its whole middleware stack, so vote against /livez tells only the
stack's share.)

    python -m loadtests.pure_app --port 8001 --workers 1
"""

from __future__ import annotations

import argparse

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def hello(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


app = Starlette(routes=[Route("/", hello)])


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    uvicorn.run(
        "loadtests.pure_app:app",
        host=args.host,
        port=args.port,
        workers=args.workers,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
        server_header=False,
    )


if __name__ == "__main__":
    main()
