"""Drive Label Studio's labeling page in the system's headless Chromium, through Playwright.

Chromium comes from the OS packages (`/usr/bin/chromium`); Playwright never downloads a browser
here. The browser gets a throwaway HOME and profile, and every request to a host other than
127.0.0.1 is aborted, so a test touches nothing outside its temporary directory and loopback.
"""

from __future__ import annotations

import os
import struct
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

CHROMIUM = Path(os.environ.get("RELAXML_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOOPBACK_HOSTS = {"127.0.0.1"}


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A solid-colour RGB PNG, written with the standard library."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    row = b"\x00" + bytes(rgb) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


def unavailable_reason() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not CHROMIUM.exists():
        return f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (it is in the dev extra)"
    return None


@contextmanager
def chromium_page(workdir: Path) -> Iterator[Any]:
    """A page in a fresh headless Chromium whose HOME and profile live under `workdir`."""
    from playwright.sync_api import Route, sync_playwright

    home = workdir / "home"
    home.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
    }

    def loopback_only(route: Route) -> None:
        url = route.request.url
        if url.startswith(("blob:", "data:")) or urlsplit(url).hostname in LOOPBACK_HOSTS:
            route.continue_()
        else:
            route.abort()

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(workdir / "profile"),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_FLAGS,
            env=env,
            viewport={"width": 1400, "height": 900},
        )
        try:
            context.route("**/*", loopback_only)
            yield context.new_page()
        finally:
            context.close()


def log_in(page: Any, url: str, email: str, password: str) -> None:
    """Sign in through Label Studio's login form."""
    page.goto(f"{url}/user/login/")
    page.fill("#login-form input[name=email]", email)
    page.fill("#login-form input[name=password]", password)
    page.click("#login-form button[type=submit]")
    page.wait_for_url(lambda current: "/user/login" not in current, timeout=60_000)


def poll(check: Callable[[], Any], timeout: float = 60.0, interval: float = 0.5) -> Any:
    """Call `check` until it returns something truthy twice in a row with the same value."""
    deadline = time.monotonic() + timeout
    previous: Any = None
    while True:
        value = check()
        if value and value == previous:
            return value
        previous = value
        if time.monotonic() > deadline:
            return value
        time.sleep(interval)


CANVAS_BOXES = """
() => {
  // The bounding box, in canvas pixels, of the red and of the blue pixels on the editor's
  // Konva layers (the image is drawn grey, so only regions are red or blue).
  const boxes = {red: null, blue: null};
  const grow = (name, x, y) => {
    const b = boxes[name] || (boxes[name] = [x, y, x, y, 0]);
    b[0] = Math.min(b[0], x); b[1] = Math.min(b[1], y);
    b[2] = Math.max(b[2], x); b[3] = Math.max(b[3], y); b[4] += 1;
  };
  for (const canvas of document.querySelectorAll('.konvajs-content canvas')) {
    const {width, height} = canvas;
    const data = canvas.getContext('2d').getImageData(0, 0, width, height).data;
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const i = (y * width + x) * 4;
        if (!data[i + 3]) continue;
        const [r, g, b] = [data[i], data[i + 1], data[i + 2]];
        if (r > 150 && g < 90 && b < 90) grow('red', x, y);
        if (b > 150 && r < 90 && g < 90) grow('blue', x, y);
      }
    }
  }
  return boxes.red && boxes.blue ? boxes : null;
}
"""

IMAGE_TRANSFORM = """
(name) => {
  // How the editor maps image pixels to canvas pixels: scale to the stage, then zoom and pan.
  const image = window.Htx.annotationStore.selected.names.get(name);
  return {
    scaleX: image.stageZoomX * image.zoomScale,
    scaleY: image.stageZoomY * image.zoomScale,
    offsetX: image.zoomingPositionX,
    offsetY: image.zoomingPositionY,
  };
}
"""
