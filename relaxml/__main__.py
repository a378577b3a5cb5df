"""`python -m relaxml` is the `relaxml` command."""

from .cli import main

main()
