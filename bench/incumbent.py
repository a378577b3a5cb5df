"""HumanSignal's label-studio-ml-backend, from a checkout given by path, in its own venv.

It is not installable from the package index in its current form (its requirements pull the
Label Studio SDK from a git URL), so the suite pip-installs its *requirements* into a venv of
its own under the user's cache directory (the git-URL line by the same package name from the
index), and imports the checkout itself through PYTHONPATH. Nothing of it is copied into this
repository. It is served the way its Dockerfile does: gunicorn with `--preload`, 1 worker and
8 threads, `--timeout 0`, with the same trivial model as relaxml.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from common import BENCH_DIR, ServerSpec

ENV_VAR = "RELAXML_BENCH_INCUMBENT"
WORKERS, THREADS = 1, 8

_MODEL_FILE = '''\
"""The trivial model for label-studio-ml-backend (written by relaxml's bench/incumbent.py)."""

import trivial
from label_studio_ml.model import LabelStudioMLBase


class Trivial(LabelStudioMLBase):
    def predict(self, tasks, context=None, **kwargs):
        return [trivial.prediction(task["id"], task["data"]) for task in tasks]


class Slow(Trivial):
    def predict(self, tasks, context=None, **kwargs):
        trivial.slow_wait(len(tasks))
        return super().predict(tasks, context, **kwargs)


class SlowCPU(Trivial):
    def predict(self, tasks, context=None, **kwargs):
        trivial.slow_spin(len(tasks))
        return super().predict(tasks, context, **kwargs)


class Template(Trivial):
    # The model `label-studio-ml create` writes: its setup() stores the model version in the
    # framework's cache, and the framework constructs the model (so calls setup) per request.
    def setup(self):
        self.set("model_version", trivial.MODEL_VERSION)


class Loaded(LabelStudioMLBase):
    # setup() is where label-studio-ml-backend has a model set itself up; its framework
    # constructs the model class (and so calls setup) for every request.
    def setup(self):
        self.table = trivial.load_table()

    def predict(self, tasks, context=None, **kwargs):
        return [trivial.loaded_prediction(self.table, t["id"], t["data"]) for t in tasks]
'''

# The logging set-up and app line of the checkout's _wsgi.py template, for the model above.
_WSGI_FILE = '''\
"""gunicorn entry point (written by relaxml's bench/incumbent.py)."""

import logging.config
import os

logging.config.dictConfig({
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"standard": {
        "format": "[%(asctime)s] [%(levelname)s] [%(name)s::%(funcName)s::%(lineno)d] %(message)s"
    }},
    "handlers": {"console": {
        "class": "logging.StreamHandler", "level": os.getenv("LOG_LEVEL", "INFO"),
        "stream": "ext://sys.stdout", "formatter": "standard",
    }},
    "root": {"level": os.getenv("LOG_LEVEL", "INFO"), "handlers": ["console"]},
})

from label_studio_ml.api import init_app  # noqa: E402

import bench_incumbent_model  # noqa: E402

app = init_app(model_class=getattr(bench_incumbent_model, os.environ["BENCH_MODEL"]))
'''


class IncumbentError(RuntimeError):
    """The checkout is not usable (not a label-studio-ml-backend, or its install failed)."""


@dataclass(frozen=True)
class Incumbent:
    """A prepared incumbent: its checkout, its venv and what it runs on."""

    checkout: Path
    venv: Path
    workdir: Path
    commit: str | None
    dockerfile_cmd: str | None
    versions: dict[str, str]

    def spec(self, model: str) -> ServerSpec:
        """gunicorn serving `model` (Trivial, Template, Slow, SlowCPU or Loaded), as the
        Dockerfile does."""
        argv = [
            str(self.venv / "bin" / "gunicorn"),
            "--preload",
            "--bind",
            "{host}:{port}",
            "--workers",
            str(WORKERS),
            "--threads",
            str(THREADS),
            "--timeout",
            "0",
            "_wsgi:app",
        ]
        env = {
            "BENCH_MODEL": model,
            "PYTHONPATH": os.pathsep.join([str(self.workdir), str(self.checkout), str(BENCH_DIR)]),
            "MODEL_DIR": str(self.workdir / "data"),
            "LOG_LEVEL": "INFO",
        }
        return ServerSpec(f"incumbent-{model}", argv, env, cwd=self.workdir)

    def describe(self) -> str:
        commit = f" at {self.commit[:12]}" if self.commit else ""
        return f"label-studio-ml-backend{commit}, gunicorn {WORKERS} worker x {THREADS} threads"


def checkout_from(path: str | None) -> Path | None:
    """The checkout given by `--incumbent` or the environment, if any."""
    value = path or os.environ.get(ENV_VAR, "").strip()
    return Path(value).expanduser().resolve() if value else None


def prepare(checkout: Path, workdir: Path, log: Path) -> Incumbent:
    """Check the checkout, make (or reuse) its venv, and write the model files to `workdir`."""
    if not (checkout / "label_studio_ml" / "api.py").is_file():
        raise IncumbentError(f"{checkout} is not a label-studio-ml-backend checkout")
    requirements = requirements_of(checkout)
    venv = _venv_dir(requirements)
    if not (venv / ".installed").is_file():
        _install(venv, requirements, log)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "bench_incumbent_model.py").write_text(_MODEL_FILE)
    (workdir / "_wsgi.py").write_text(_WSGI_FILE)
    (workdir / "data").mkdir(exist_ok=True)
    return Incumbent(
        checkout=checkout,
        venv=venv,
        workdir=workdir,
        commit=_commit(checkout),
        dockerfile_cmd=_dockerfile_cmd(checkout),
        versions=_versions(venv),
    )


def requirements_of(checkout: Path) -> list[str]:
    """The checkout's requirements plus the server of its Dockerfile, all from the index.

    A `name @ git+https://...` line becomes plain `name`; the checkout itself
    (`label-studio-ml`) is not installed but imported from the checkout.
    """
    files = [
        checkout / "requirements.txt",
        checkout / "label_studio_ml" / "default_configs" / "requirements-base.txt",
    ]
    wanted: list[str] = []
    for file in files:
        if not file.is_file():
            raise IncumbentError(f"{file} is missing: is this a label-studio-ml-backend checkout?")
        for raw in file.read_text().splitlines():
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            if "@" in line and "git+" in line:
                line = line.split("@", 1)[0].strip()
            name = re.split(r"[<>=~!\[ ]", line, maxsplit=1)[0].lower()
            if name in ("label-studio-ml", "label_studio_ml"):
                continue
            wanted.append(line)
    return wanted


def _venv_dir(requirements: list[str]) -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    key = hashlib.sha256(
        json.dumps([sys.version_info[:2], sorted(requirements)]).encode()
    ).hexdigest()[:12]
    return cache / "relaxml-bench" / f"incumbent-venv-{key}"


def _install(venv: Path, requirements: list[str], log: Path) -> None:
    print(f"  installing the incumbent's requirements into {venv} (once) ...", flush=True)
    steps = [
        [sys.executable, "-m", "venv", "--clear", str(venv)],
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", *requirements],
    ]
    with log.open("ab") as out:
        for step in steps:
            if subprocess.run(step, stdout=out, stderr=subprocess.STDOUT, check=False).returncode:
                raise IncumbentError(f"{' '.join(step[:4])} ... failed; see {log}")
    (venv / ".installed").write_text("\n".join(requirements) + "\n")


def _versions(venv: Path) -> dict[str, str]:
    probe = (
        "import importlib.metadata as m, json, sys\n"
        "names = ['flask', 'werkzeug', 'gunicorn', 'label-studio-sdk', 'pydantic']\n"
        "out = {n: m.version(n) for n in names}\n"
        "out['python'] = sys.version.split()[0]\n"
        "print(json.dumps(out))\n"
    )
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-c", probe], capture_output=True, text=True, check=False
    )
    try:
        return dict(json.loads(done.stdout))
    except ValueError:
        return {}


def _commit(checkout: Path) -> str | None:
    done = subprocess.run(
        ["git", "-C", str(checkout), "rev-parse", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() or None if done.returncode == 0 else None


def _dockerfile_cmd(checkout: Path) -> str | None:
    dockerfile = checkout / "label_studio_ml" / "default_configs" / "Dockerfile"
    if not dockerfile.is_file():
        return None
    for line in dockerfile.read_text().splitlines():
        if line.startswith("CMD "):
            return line.removeprefix("CMD ").strip()
    return None
