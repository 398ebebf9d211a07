"""A number typed by hand into a CSV cell (a TA's points in scores.csv): a plain decimal or nothing."""

from __future__ import annotations

import math
import re

_PLAIN_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")


def plain_decimal(text: str) -> float | None:
    """`text` as a number when it is a plain decimal (digits with at most one point and an optional
    sign: '1', '0.5', '.5', '1.', '+1', '-1'), else None.

    float() also takes '0.2_5', '1e3', 'inf', ' nan', and int() takes '½'-like digits from other
    scripts; a score typed by hand is none of these, so any of them is a typo to report, not a value.
    """
    if not _PLAIN_DECIMAL.fullmatch(text):
        return None
    value = float(text)
    return value + 0.0 if math.isfinite(value) else None  # + 0.0 turns '-0' into 0.0


__all__ = ["plain_decimal"]
