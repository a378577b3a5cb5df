"""Which device a worker's model runs on: `RELAXML_DEVICES` round-robin, or a guess.

Nothing here imports torch unless it is installed, and nothing runs before a worker process
asks: the parent of `relaxml serve --workers N` never touches CUDA, so its workers (spawned,
not forked) each initialise their own.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util


def parse_devices(text: str) -> tuple[str, ...]:
    """`"cuda:0, cuda:1"` → `("cuda:0", "cuda:1")`; a `ValueError` for an empty entry."""
    parts = tuple(part.strip() for part in text.split(","))
    if not parts or any(not part for part in parts):
        raise ValueError(
            f"expected comma-separated device names such as 'cuda:0,cuda:1' or 'cpu', got {text!r}"
        )
    return parts


def device_for(devices: tuple[str, ...], slot: int) -> str:
    """The device of worker `slot` (0, 1, ...): the list round-robin, or `default_device()`."""
    if not devices:
        return default_device()
    return devices[slot % len(devices)]


@functools.cache
def default_device() -> str:
    """`"cuda"` when torch is installed and reports a GPU, else `"cpu"`.

    torch is imported only when it is installed; any error while asking it means `"cpu"`.
    """
    if importlib.util.find_spec("torch") is None:
        return "cpu"
    try:
        torch = importlib.import_module("torch")
        return "cuda" if torch.cuda.is_available() else "cpu"
    except Exception:
        return "cpu"
