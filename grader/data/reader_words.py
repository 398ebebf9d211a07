"""How the face-set readers' DataFormatError messages count and quote what they found."""

from __future__ import annotations


def counted(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def quoted(text: str, limit: int = 20) -> str:
    """Quote a cell for a message, cut short so one garbage cell cannot flood the report."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


__all__ = ["counted", "quoted"]
