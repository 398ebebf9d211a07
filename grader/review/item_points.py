"""Changing a rubric item's points in the review app, as PrairieLearn does: the new points hold for
every student, so every saved score that checked the item is computed again (and saved, with its
history, under the TA who changed the points). The rubric file is not rewritten: the changed points
live in the workspace's database (table item_points) and `effective_rubric` applies them."""

from __future__ import annotations

import math
from datetime import datetime, timezone

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from grader.review.database import writing
from grader.review.schema import ItemPointsRow
from grader.review.store import ReviewStore
from grader.review.values import ReviewInputError
from grader.scoring.rubric import Criterion, Rubric
from grader.scoring.rubric_items import item_score


def effective_rubric(rubric: Rubric, store: ReviewStore) -> Rubric:
    """The rubric with the item points changed in the app."""
    with Session(store.engine) as session:
        changed = {(row.criterion_id, row.item_id): row.points for row in session.scalars(select(ItemPointsRow))}
    if not changed:
        return rubric
    questions = [q.model_copy(update={"criteria": [_with_points(c, changed) for c in q.criteria]})
                 for q in rubric.questions]
    return rubric.model_copy(update={"questions": questions})


def _with_points(criterion: Criterion, changed: dict[tuple[str, str], float]) -> Criterion:
    items = [item.model_copy(update={"points": changed.get((criterion.id, item.id), item.points)})
             for item in criterion.items]
    return criterion.model_copy(update={"items": items})


def change_item_points(store: ReviewStore, rubric: Rubric, criterion_id: str, item_id: str, points: float, *,
                       grader: str) -> int:
    """Give an item new points and score again every student who checked it; returns how many were.
    Refused (ReviewInputError) when the item is unknown, the points are not finite, or full marks
    would no longer be reachable with the criterion's positive items."""
    current = effective_rubric(rubric, store)
    criterion = next((c for q in current.questions for c in q.criteria if c.id == criterion_id), None)
    if criterion is None or item_id not in {item.id for item in criterion.items}:
        raise ReviewInputError(f"{criterion_id}: the rubric has no item '{item_id}' there")
    if not math.isfinite(points):
        raise ReviewInputError(f"{criterion_id}, {item_id}: points must be a finite number, not {points}")
    try:
        changed = Criterion.model_validate(_with_points(criterion, {(criterion_id, item_id): points}).model_dump())
    except ValidationError as error:
        raise ReviewInputError(f"{criterion_id}, {item_id}: {error.errors()[0]['msg']}") from None
    with Session(writing(store.engine)) as session, session.begin():
        session.merge(ItemPointsRow(criterion_id=criterion_id, item_id=item_id, points=points, changed_by=grader,
                                    changed_at=datetime.now(timezone.utc)))
    rescored = 0
    for saved in store.scores():
        if saved.criterion_id != criterion_id or item_id not in saved.items:
            continue
        store.save_score(saved.student_id, criterion_id, grader=grader, items=saved.items,
                         score=item_score(changed, saved.items, saved.adjustment), adjustment=saved.adjustment,
                         adjustment_comment=saved.adjustment_comment, comment=saved.comment,
                         expected_version=saved.version)
        rescored += 1
    return rescored
