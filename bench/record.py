"""Run a benchmark script and keep its output in bench/RESULTS.md, in its own section.

    .venv/bin/python bench/record.py NAME "Title" -- COMMAND [ARGS...]
"""

from __future__ import annotations

import subprocess
import sys

from results import machine_line, write_section


def main(argv: list[str]) -> None:
    name, title, separator, *command = argv
    if separator != "--" or not command:
        raise SystemExit(__doc__)
    completed = subprocess.run(command, check=True, capture_output=True, text=True)
    print(completed.stdout, end="")
    write_section(name, title, " ".join(command), machine_line(), completed.stdout.rstrip("\n").splitlines())


if __name__ == "__main__":
    main(sys.argv[1:])
