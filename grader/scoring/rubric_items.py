"""The score of a manual criterion graded with rubric items (issue 15): pure, no I/O.

The rule, as PrairieLearn's manual grading:

    score = clip(clip(sum of the checked items' points, 0, worth) + adjustment, 0, worth)

- Each checked item counts once (checking is a toggle: an id given twice is one check); items may
  be negative (deductions), so the sum is clipped to [0, worth] before the adjustment.
- The adjustment (the TA's free correction, given with a comment) is added to that, and the result
  is clipped again: a manual score must lie within the criterion's worth (the contract of
  `--manual scores.csv`), so no adjustment takes a student below 0 or above full marks.
- The result is rounded to 6 decimals, so that 0.1 + 0.2 reads 0.3 in scores.csv.

Changing an item's points changes the score of everyone who checked it: the score is always
recomputed from the checked ids, never stored on its own.
"""

from __future__ import annotations

from collections.abc import Iterable
import math

from grader.scoring.rubric import Criterion


def item_score(criterion: Criterion, checked_item_ids: Iterable[str], adjustment: float = 0.0) -> float:
    """The criterion's points for these checked items and adjustment (the rule above).

    Raises ValueError for an automatic criterion, for item ids the criterion does not have (naming
    all of them), and for an adjustment that is not a finite number."""
    if not criterion.manual:
        raise ValueError(f"criterion '{criterion.id}' is automatic: it is scored by its metric, not by rubric items")
    if isinstance(checked_item_ids, str):
        raise TypeError("checked_item_ids is a collection of item ids, not one string")
    adjustment = float(adjustment)
    if not math.isfinite(adjustment):
        raise ValueError(f"the adjustment for criterion '{criterion.id}' must be a finite number, not {adjustment}")
    points = {item.id: item.points for item in criterion.items}
    checked = set(checked_item_ids)
    unknown = sorted(checked - points.keys())
    if unknown:
        known = ", ".join(points) or "none"
        raise ValueError(f"criterion '{criterion.id}' has no item {', '.join(repr(i) for i in unknown)} "
                         f"(its items: {known})")
    worth = criterion.points
    from_items = _clip(math.fsum(points[item_id] for item_id in checked), worth)
    return round(_clip(from_items + adjustment, worth), 6) + 0.0  # + 0.0: never -0.0


def _clip(value: float, worth: float) -> float:
    return min(max(value, 0.0), worth)
