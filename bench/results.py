"""bench/RESULTS.md: each benchmark owns one marked section (<!-- NAME:start --> .. <!-- NAME:end -->),
with the exact command, the date and the machine; writing one leaves the others as they are."""

from __future__ import annotations

import datetime
import os
import platform
import re
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def machine_line(threads: int | None = None) -> str:
    """CPU model, cores, OS, Python, torch and its thread counts."""
    cpu = "unknown CPU"
    try:
        found = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.MULTILINE)
        cpu = found.group(1).strip() if found else cpu
    except OSError:
        pass
    threads = torch.get_num_threads() if threads is None else threads
    return (f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.machine()}, Python "
            f"{platform.python_version()}, torch {torch.__version__}, torch threads {threads} "
            f"(interop {torch.get_num_interop_threads()})")


def write_section(name: str, title: str, command: str, machine: str, lines: list[str],
                  path: Path = RESULTS) -> None:
    """Replace (or append) the section `name` of RESULTS.md."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    today = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    section = "\n".join([start, f"## {title}", "", f"- command: `{command}`", f"- date: {today}",
                         f"- machine: {machine}", "", "```", *lines, "```", end])
    text = path.read_text(encoding="utf-8") if path.is_file() else "# Benchmark results\n"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        text = before + section + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text, encoding="utf-8")
