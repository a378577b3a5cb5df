"""`python -m relaxml` is the `relaxml` command."""

from __future__ import annotations

from .cli import main

main()
