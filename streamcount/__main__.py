"""`python -m streamcount` works like `streamcount`."""

from .cli import main

main()
