"""`streamcount` and `python -m streamcount`: the command line, imported when it runs.

The console script imports this module, not the CLI: a worker process started
with "spawn" re-runs the parent's main script, and this keeps the workers from
loading typer, click and sqlite-utils, which they never use (~0.15 s of CPU
and ~6 MB each).
"""


def main() -> None:
    from .cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
