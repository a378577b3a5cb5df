"""The floor: a bare Starlette backend doing what a minimal correct backend must, and no more.

It parses the JSON body, checks that `tasks` is a list of task objects (answering 400
otherwise), runs the same sync predict as relaxml's `Trivial` in a worker thread (a sync model
must not block the event loop, or `/health` stalls), one call at a time (the model need not be
thread-safe, as relaxml promises by default), and answers the same response shape. It runs
under uvicorn with uvicorn's defaults (1 worker, one access-log line per request), like
`relaxml serve` (one log line per request of its own).

With `--model loaded` it serves the model that loads weights (`trivial.load_table`, about
20 ms), loaded once when the app starts, as a correct backend does.

    python bench/floor.py --port 9091 [--model loaded]
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.to_thread
import trivial
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


def predict(tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The trivial model, as a plain function over task dicts."""
    return [trivial.prediction(task["id"], task["data"]) for task in tasks]


class Loaded:
    """The model that loads weights: constructed once, at start-up."""

    def __init__(self) -> None:
        self.table = trivial.load_table()

    def __call__(self, tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [trivial.loaded_prediction(self.table, t["id"], t["data"]) for t in tasks]


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"status": "UP", "model_class": request.app.state.model_class})


async def predict_endpoint(request: Request) -> JSONResponse:
    try:
        body = await request.json()
    except ValueError:
        return JSONResponse({"error": "the body is not valid JSON"}, status_code=400)
    tasks = body.get("tasks") if isinstance(body, dict) else None
    if not isinstance(tasks, list) or not all(
        isinstance(t, dict) and isinstance(t.get("id"), int) and isinstance(t.get("data"), dict)
        for t in tasks
    ):
        return JSONResponse({"error": "'tasks' must be a list of tasks"}, status_code=400)
    model = request.app.state.model
    results = await anyio.to_thread.run_sync(model, tasks, limiter=request.app.state.one_call)
    return JSONResponse({"results": results, "model_version": trivial.MODEL_VERSION})


MODELS: dict[str, Callable[[], Callable[[list[dict[str, Any]]], list[dict[str, Any]]]]] = {
    "trivial": lambda: predict,
    "loaded": Loaded,
}


def make_app(
    model: str = "trivial",
    endpoint: Callable[[Request], Awaitable[JSONResponse]] | None = None,
) -> Starlette:
    """The floor serving `model` (a key of MODELS), constructed once when the app starts;
    `endpoint` replaces its /predict (the limit's, in bench/limit.py)."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.one_call = anyio.CapacityLimiter(1)  # one predict call at a time
        app.state.model = await anyio.to_thread.run_sync(MODELS[model])
        app.state.model_class = model.capitalize()
        yield

    return Starlette(
        routes=[
            Route("/health", health, methods=["GET"]),
            Route("/predict", endpoint or predict_endpoint, methods=["POST"]),
        ],
        lifespan=lifespan,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9091)
    parser.add_argument("--model", choices=sorted(MODELS), default="trivial")
    args = parser.parse_args()
    app = make_app(args.model)
    uvicorn.run(app, host=args.host, port=args.port, timeout_graceful_shutdown=10)


if __name__ == "__main__":
    main()
