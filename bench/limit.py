"""The limit of the stack: a bare Starlette app that does the least a backend can.

It parses the JSON body, runs the same trivial predict as relaxml's `Trivial` **on the event
loop** (no thread hop), and answers the same response shape, under the same uvicorn with no
access log. No server built on Starlette and uvicorn answers faster; relaxml's overhead is
measured against it. (It is not a correct backend: a slow sync model would block `/health`;
`bench/floor.py` is the correct one.)

    python bench/limit.py --port 9092 [--model loaded]
"""

from __future__ import annotations

import argparse
import json

import floor
import trivial
import uvicorn
from floor import MODELS
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse


async def predict_endpoint(request: Request) -> JSONResponse:
    try:
        body = json.loads(await request.body())
        tasks = body["tasks"]
    except (ValueError, KeyError, TypeError):
        return JSONResponse({"error": "expected a JSON object with 'tasks'"}, status_code=400)
    results = request.app.state.model(tasks)
    return JSONResponse({"results": results, "model_version": trivial.MODEL_VERSION})


def make_app(model: str = "trivial") -> Starlette:
    """The limit serving `model` (a key of floor.MODELS), constructed once at start-up."""
    return floor.make_app(model, endpoint=predict_endpoint)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9092)
    parser.add_argument("--model", choices=sorted(MODELS), default="trivial")
    args = parser.parse_args()
    uvicorn.run(make_app(args.model), host=args.host, port=args.port, access_log=False)


if __name__ == "__main__":
    main()
