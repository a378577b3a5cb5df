"""Synthetic pages for the OCR example: lines of words rendered with Pillow's own font.

Everything is made at run time from fixed seeds: nothing is downloaded. Run it as a script to
write the pages `tasks.json` names into a folder (see the README):

    python -m examples.ocr.tests.pages <folder>
"""

from __future__ import annotations

import random
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

WORDS = [
    "invoice",
    "total",
    "amount",
    "paid",
    "order",
    "number",
    "date",
    "customer",
    "address",
    "street",
    "city",
    "delivery",
    "tax",
    "net",
    "price",
    "item",
    "receipt",
    "cash",
    "card",
    "change",
    "thank",
    "you",
    "discount",
    "balance",
    "due",
    "account",
    "bank",
]

SAMPLE_PAGES = {
    "page-1.png": ["Invoice 2041", "Customer Jane Smith", "Qty 3 Amt 12.50", "Total due 37.50"],
    "page-2.png": ["Receipt 77", "Qty 1 Amt 4.20", "Card paid 4.20", "Thank you"],
    "page-3.png": ["Delivery note 9", "Street address 12 Main St", "Qty 12 boxes"],
}
"""The pages of `tasks.json`: an annotator would write `Quantity` and `Amount` for `Qty` and
`Amt`, which the model learns as corrections."""


@dataclass(frozen=True)
class Page:
    """A rendered page, the text of its lines and each line's ink box (x0, y0, x1, y1)."""

    image: Image.Image
    lines: list[str]
    boxes: list[tuple[int, int, int, int]]


def render_page(
    lines: list[str], *, size: int = 28, noise: float = 0.0, blur: float = 0.0, seed: int = 0
) -> Page:
    """Black text on white, one line under the other, then Gaussian noise and blur."""
    font = ImageFont.load_default(size=size)
    step = int(size * 1.9)
    width = max(int(font.getlength(line)) for line in lines) + 2 * size + 40
    image = Image.new("L", (width, step * len(lines) + 2 * size), 255)
    draw = ImageDraw.Draw(image)
    boxes = []
    for i, line in enumerate(lines):
        origin = (size + 20, size + i * step)
        draw.text(origin, line, font=font, fill=20)
        x0, y0, x1, y1 = draw.textbbox(origin, line, font=font)
        boxes.append((int(x0), int(y0), int(x1), int(y1)))
    if noise:
        pixels = np.asarray(image, dtype=np.float64)
        pixels += np.random.default_rng(seed).normal(0.0, noise, pixels.shape)
        image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    if blur:
        image = image.filter(ImageFilter.GaussianBlur(blur))
    return Page(image.convert("RGB"), lines, boxes)


def random_lines(rng: random.Random, count: int) -> list[str]:
    """`count` lines of 2 to 5 words and an amount, e.g. `Cash paid city 32.02`."""
    lines = []
    for _ in range(count):
        words = [rng.choice(WORDS) for _ in range(rng.randint(2, 5))]
        words[0] = words[0].capitalize()
        lines.append(" ".join(words) + f" {rng.randint(1, 999)}.{rng.randint(0, 99):02d}")
    return lines


BENCHMARK = [  # (font size, noise sigma, blur radius): two pages of each
    (11, 0.0, 0.0),
    (14, 60.0, 0.7),
    (20, 90.0, 1.4),
    (32, 110.0, 2.2),
]


def benchmark_pages(seed: int = 13) -> list[Page]:
    """The measured set: eight pages of five random lines, from small and clean to large,
    noisy and blurred."""
    rng = random.Random(seed)
    pages = []
    for n, (size, noise, blur) in enumerate(BENCHMARK * 2):
        pages.append(render_page(random_lines(rng, 5), size=size, noise=noise, blur=blur, seed=n))
    return pages


HOUSE_RULES = {"Qty": "Quantity", "Amt": "Amount", "Tel": "Telephone", "Inv": "Invoice"}
"""Abbreviations printed on the pages that annotators write out in full."""


def abbreviated_pages(seed: int, count: int = 3) -> list[tuple[Page, list[str]]]:
    """Pages printed with the abbreviations of `HOUSE_RULES`, each with the transcription an
    annotator following those rules writes."""
    rng = random.Random(seed)
    pages = []
    for n in range(count):
        lines = [
            f"Inv {rng.randint(100, 999)} {rng.choice(WORDS)}",
            f"Qty {rng.randint(1, 20)} Amt {rng.randint(1, 99)}.{rng.randint(0, 99):02d}",
            f"Tel {rng.randint(100, 999)} {rng.randint(1000, 9999)}",
            *random_lines(rng, 2),
        ]
        written = [" ".join(HOUSE_RULES.get(w, w) for w in line.split()) for line in lines]
        pages.append((render_page(lines, size=24, seed=n), written))
    return pages


def main(folder: str) -> None:
    """Write the sample pages of `tasks.json` into `folder`."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    for name, lines in SAMPLE_PAGES.items():
        render_page(lines).image.save(out / name)
        print(out / name)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "ocr-pages")
