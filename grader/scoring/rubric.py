"""The schema of rubric.yaml: questions, each split into automatic and manual criteria."""

from __future__ import annotations

from importlib import resources

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from grader.yamlfile import load_yaml_model


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Band(_Strict):
    """`points` when the metric's value is at least `min` (or at most `max`)."""

    min: float | None = None
    max: float | None = None
    points: float = Field(ge=0)

    @model_validator(mode="after")
    def _one_bound(self) -> Band:
        if (self.min is None) == (self.max is None):
            raise ValueError("a band needs exactly one of min (value >= min) or max (value <= max)")
        return self

    def admits(self, value: float) -> bool:
        return value >= self.min if self.min is not None else value <= self.max  # type: ignore[operator]

    def describe(self) -> str:
        return f">= {self.min:g}" if self.min is not None else f"<= {self.max:g}"


PAGE_KEYS = "jkcshr"
"""The review page's own keys (next, previous, comment, save, history, reusable comment): an item
cannot take one, or typing it would do two things."""


class RubricItem(_Strict):
    """One rubric item of a manual criterion (issue 15): the TA checks it, by clicking or by typing
    its `key`, instead of inventing a number. `points` may be negative (a deduction). The score is
    grader.scoring.rubric_items.item_score: the checked items' sum clipped to the criterion's range,
    plus an optional adjustment."""

    id: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    key: str
    text: str = Field(min_length=1)
    points: float = Field(allow_inf_nan=False)

    @field_validator("key", mode="before")
    @classmethod
    def _digit_key(cls, key: object) -> object:
        # YAML reads `key: 1` as the number 1; a single digit is the key the TA types.
        if isinstance(key, int) and not isinstance(key, bool) and 0 <= key <= 9:
            return str(key)
        return key

    @field_validator("key")
    @classmethod
    def _one_character(cls, key: str) -> str:
        if len(key) != 1 or not key.isprintable() or key.isspace():
            raise ValueError(f"a key is the one printable character the TA types (such as 1 or a), "
                             f"not {key!r}")
        if key in PAGE_KEYS:
            raise ValueError(f"the key {key!r} is the review page's own ({', '.join(PAGE_KEYS)} are taken): "
                             f"give the item another one, such as a digit")
        return key

    @field_validator("text")
    @classmethod
    def _not_blank(cls, text: str) -> str:
        if not text.strip():
            raise ValueError("an item needs a text saying what the TA checks")
        return text


class Criterion(_Strict):
    """One scored property. Automatic criteria name a metric and bands; manual ones await the TA,
    optionally with rubric items (`items`) to check."""

    id: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    points: float = Field(gt=0)
    manual: bool = False
    metric: str | None = None
    bands: list[Band] = []
    items: list[RubricItem] = []

    @field_validator("items")
    @classmethod
    def _items_fit(cls, items: list[RubricItem], info: ValidationInfo) -> list[RubricItem]:
        if not items:
            return items
        name = info.data.get("id", "?")
        if "manual" in info.data and not info.data["manual"]:
            raise ValueError(f"criterion '{name}' is automatic (scored by its metric): rubric items are "
                             "for manual criteria only; remove its items or set manual: true")
        ids: dict[str, int] = {}
        keys: dict[str, str] = {}
        for index, item in enumerate(items):
            if item.id in ids:
                raise ValueError(f"the item id '{item.id}' is used twice in criterion '{name}' (items.{ids[item.id]} "
                                 f"and items.{index}); item ids and keys must be unique within a criterion")
            if item.key in keys:
                raise ValueError(f"items '{keys[item.key]}' and '{item.id}' of criterion '{name}' have the same key "
                                 f"'{item.key}'; item ids and keys must be unique within a criterion")
            ids[item.id], keys[item.key] = index, item.id
        points = info.data.get("points")
        reachable = sum(item.points for item in items if item.points > 0)
        if points is not None and reachable < points - 1e-9:
            raise ValueError(f"the positive items of criterion '{name}' add up to {reachable:g} points but it is "
                             f"worth {points:g}: full marks must be reachable by checking items")
        return items

    @model_validator(mode="after")
    def _metric_or_manual(self) -> Criterion:
        if self.manual:
            if self.metric or self.bands:
                raise ValueError("a manual criterion is scored by the TA: remove metric and bands")
            return self
        if not self.metric or not self.bands:
            raise ValueError("an automatic criterion needs a metric and at least one band (or set manual: true)")
        from grader.scoring.metrics import METRICS

        if self.metric not in METRICS:
            raise ValueError(f"unknown metric '{self.metric}': choose one of {', '.join(sorted(METRICS))}")
        too_many = [b.points for b in self.bands if b.points > self.points]
        if too_many:
            raise ValueError(f"a band gives {max(too_many):g} points but the criterion is worth {self.points:g}")
        return self

    def points_for(self, value: float) -> float:
        """The best band the value reaches; 0 when it reaches none."""
        return max((band.points for band in self.bands if band.admits(value)), default=0.0)

    def points_within(self, value: float, interval: tuple[float, float] | None) -> tuple[float, bool]:
        """The points of the best band that the whole interval clears (the value alone when there is
        no interval), and whether the interval reaches into a better band (borderline): a band is
        awarded only when the measurement's uncertainty cannot have put it there."""
        if interval is None:
            return self.points_for(value), False
        reached = [self.points_for(end) for end in (interval[0], value, interval[1])]
        return min(reached), max(reached) > min(reached)

    def describe_bands(self) -> str:
        return "; ".join(f"{band.describe()}: {band.points:g} pt" for band in self.bands)


class Question(_Strict):
    """One question of the report. `method` is the explanation the grader runs for it: a name from
    grader.explain.registry.METHODS, or `freeform` for the method the student chose in
    submission.yaml; None for a question answered in writing only (no figure is made for it)."""

    id: str = Field(pattern=r"^q[1-9][0-9]*$")
    title: str
    points: float = Field(gt=0)
    method: str | None = None
    criteria: list[Criterion] = Field(min_length=1)

    @field_validator("method")
    @classmethod
    def _known_method(cls, method: str | None) -> str | None:
        from grader.explain.registry import METHODS  # the registry imports no heavy library (a test checks)
        from grader.questions.output import FREEFORM

        if method is not None and method != FREEFORM and method not in METHODS:
            raise ValueError(f"unknown method '{method}': choose one of {', '.join(sorted([*METHODS, FREEFORM]))}")
        return method

    @model_validator(mode="after")
    def _points_add_up(self) -> Question:
        total = sum(c.points for c in self.criteria)
        if abs(total - self.points) > 1e-9:
            raise ValueError(f"its criteria add up to {total:g} points but the question is worth {self.points:g}")
        return self


class ExplanationGate(_Strict):
    """The minimal model quality below which no explanation criterion scores (issue 19): a model that
    names one class for nearly every face, or a randomized copy, has explanations of nothing. `metric`
    must measure the model, not an explanation (accuracy, balanced_accuracy, min_class_recall); the
    gate is passed when its value is at least `min`."""

    metric: str
    min: float = Field(allow_inf_nan=False)
    description: str = ""

    @field_validator("metric")
    @classmethod
    def _model_metric(cls, name: str) -> str:
        from grader.scoring.metrics import METRICS

        model_metrics = sorted(metric for metric, known in METRICS.items() if not known.explains)
        if name not in model_metrics:
            raise ValueError(f"the explanation gate needs a metric of the model, one of {', '.join(model_metrics)}; "
                             f"got '{name}'")
        return name


class Rubric(_Strict):
    questions: list[Question] = Field(min_length=1)
    explanation_gate: ExplanationGate | None = None

    @field_validator("questions")
    @classmethod
    def _unique_ids(cls, questions: list[Question]) -> list[Question]:
        seen: set[str] = set()
        for item in [q.id for q in questions] + [c.id for q in questions for c in q.criteria]:
            if item in seen:
                raise ValueError(f"the id '{item}' is used twice; question and criterion ids must be unique")
            seen.add(item)
        return questions

    @property
    def max_score(self) -> float:
        return sum(q.points for q in self.questions)


def load_rubric(path: str | Path) -> Rubric:
    """Read and validate rubric.yaml; raises ConfigError naming the line and field of every problem."""
    return load_yaml_model(path, Rubric)


def default_rubric_path() -> Path:
    """The course rubric shipped inside the package (grader/rubric.yaml), used when no --rubric is
    given: an installed grader works from any folder."""
    return Path(str(resources.files("grader") / "rubric.yaml"))
