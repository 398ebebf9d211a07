"""Rubric items of manual criteria (issue 15): the schema in rubric.yaml, its errors (file, line,
field) and the scoring rule (grader/scoring/rubric_items.py)."""

import textwrap

import pytest

from grader.scoring.rubric import Criterion, load_rubric
from grader.scoring.rubric_items import item_score
from grader.yamlfile import ConfigError

WITH_ITEMS = """\
questions:
  - id: q1
    title: Saliency
    points: 3
    criteria:
      - id: q1_accuracy
        metric: accuracy
        points: 2
        bands:
          - {min: 0.8, points: 2}
      - id: q1_answer
        manual: true
        points: 1
        items:
          - {id: parts, key: "1", points: 0.5, text: "Names the face parts"}
          - {id: classes, key: "2", points: 0.5, text: "Compares the classes"}
          - {id: noisy, key: "3", points: 0.25, text: "Says where the maps mislead"}
          - {id: describes_only, key: "9", points: -0.25, text: "Describes without interpreting"}
"""


def write(tmp_path, text: str):
    path = tmp_path / "rubric.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems(tmp_path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_rubric(write(tmp_path, text))
    return caught.value.problems


def answer(tmp_path, text: str = WITH_ITEMS) -> Criterion:
    return load_rubric(write(tmp_path, text)).questions[0].criteria[1]


# --- the schema ---------------------------------------------------------------------------------

def test_items_are_read_with_their_keys_and_points(tmp_path):
    criterion = answer(tmp_path)
    assert [(i.id, i.key, i.points) for i in criterion.items] == [
        ("parts", "1", 0.5), ("classes", "2", 0.5), ("noisy", "3", 0.25), ("describes_only", "9", -0.25)]


def test_an_unquoted_digit_key_is_the_character(tmp_path):
    criterion = answer(tmp_path, WITH_ITEMS.replace('key: "1"', "key: 1"))
    assert criterion.items[0].key == "1"


def test_a_rubric_without_items_is_as_before(tmp_path):
    text = WITH_ITEMS.split("        items:")[0]
    criterion = answer(tmp_path, text)
    assert criterion.items == []


def test_every_manual_criterion_of_the_default_rubric_has_items_that_reach_full_marks():
    rubric = load_rubric("rubric.yaml")
    manual = [c for q in rubric.questions for c in q.criteria if c.manual]
    assert [c.id for c in manual] == ["q1_answer", "q2_answer", "q3_answer", "q4_answer"]
    for criterion in manual:
        positive = [i.id for i in criterion.items if i.points > 0]
        assert item_score(criterion, positive) == criterion.points
        assert any(i.points < 0 for i in criterion.items), criterion.id
        assert item_score(criterion, [i.id for i in criterion.items if i.points < 0]) == 0
    automatic = [c for q in rubric.questions for c in q.criteria if not c.manual]
    assert all(c.items == [] for c in automatic)


def test_items_on_an_automatic_criterion_name_it(tmp_path):
    text = WITH_ITEMS.replace("""          - {min: 0.8, points: 2}
""", """          - {min: 0.8, points: 2}
        items:
          - {id: extra, key: x, points: 1, text: "A bonus"}
""")
    found = problems(tmp_path, text)
    assert found == [f"{tmp_path / 'rubric.yaml'}:11: questions.0.criteria.0.items: criterion 'q1_accuracy' is "
                     "automatic (scored by its metric): rubric items are for manual criteria only; remove its "
                     "items or set manual: true"]


def test_a_duplicate_key_names_both_items_and_the_criterion(tmp_path):
    found = problems(tmp_path, WITH_ITEMS.replace('key: "2"', 'key: "1"'))
    assert found == [f"{tmp_path / 'rubric.yaml'}:14: questions.0.criteria.1.items: items 'parts' and 'classes' "
                     "of criterion 'q1_answer' have the same key '1'; item ids and keys must be unique within a "
                     "criterion"]


def test_a_duplicate_id_names_both_positions_and_the_criterion(tmp_path):
    found = problems(tmp_path, WITH_ITEMS.replace("id: noisy", "id: parts"))
    assert found == [f"{tmp_path / 'rubric.yaml'}:14: questions.0.criteria.1.items: the item id 'parts' is used "
                     "twice in criterion 'q1_answer' (items.0 and items.2); item ids and keys must be unique "
                     "within a criterion"]


def test_items_that_cannot_reach_full_marks_are_refused(tmp_path):
    found = problems(tmp_path, WITH_ITEMS.replace("{id: classes, key: \"2\", points: 0.5",
                                                  "{id: classes, key: \"2\", points: 0.1"))
    assert found == [f"{tmp_path / 'rubric.yaml'}:14: questions.0.criteria.1.items: the positive items of "
                     "criterion 'q1_answer' add up to 0.85 points but it is worth 1: full marks must be reachable "
                     "by checking items"]


@pytest.mark.parametrize(("key", "why"), [
    ('"12"', "not '12'"), ('" "', "not ' '"), ('""', "not ''"), ('"\\t"', "not '\\t'")])
def test_a_key_is_one_printable_character(tmp_path, key, why):
    found = problems(tmp_path, WITH_ITEMS.replace('key: "3"', f"key: {key}"))
    assert len(found) == 1
    assert found[0].startswith(f"{tmp_path / 'rubric.yaml'}:17: questions.0.criteria.1.items.2.key: a key is the "
                               "one printable character")
    assert found[0].endswith(why)


def test_a_missing_key_and_an_unknown_field_are_named_with_their_line(tmp_path):
    found = problems(tmp_path, WITH_ITEMS.replace('key: "3", points: 0.25', 'points: 0.25, pionts: 1'))
    assert f"{tmp_path / 'rubric.yaml'}:17: questions.0.criteria.1.items.2.key: missing: this field is required" \
        in found
    assert f"{tmp_path / 'rubric.yaml'}:17: questions.0.criteria.1.items.2.pionts: unknown field (check its " \
        "spelling)" in found


@pytest.mark.parametrize("points", [".inf", "-.inf", ".nan"])
def test_item_points_are_finite(tmp_path, points):
    found = problems(tmp_path, WITH_ITEMS.replace("points: -0.25", f"points: {points}"))
    assert len(found) == 1 and ":18: questions.0.criteria.1.items.3.points: Input should be a finite number" in found[0]


def test_an_item_id_is_a_plain_name_and_its_text_is_not_blank(tmp_path):
    found = problems(tmp_path, WITH_ITEMS.replace("id: noisy", "id: 'no isy'").replace(
        '"Compares the classes"', '"  "'))
    assert any(":16: questions.0.criteria.1.items.1.text: an item needs a text" in p for p in found)
    assert any(":17: questions.0.criteria.1.items.2.id: String should match pattern" in p for p in found)


# --- the rule -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("checked", "adjustment", "expected"), [
    ([], 0.0, 0.0),
    (["parts"], 0.0, 0.5),
    (["parts", "classes"], 0.0, 1.0),
    (["parts", "classes", "noisy"], 0.0, 1.0),                  # 1.25 clipped to the worth
    (["parts", "classes", "noisy", "describes_only"], 0.0, 1.0),
    (["parts", "describes_only"], 0.0, 0.25),
    (["describes_only"], 0.0, 0.0),                              # never below 0
    (["parts"], 0.25, 0.75),
    (["parts"], -0.25, 0.25),
    (["parts", "classes", "noisy"], -0.25, 0.75),               # clipped first, then adjusted
    (["parts", "classes"], 0.5, 1.0),                            # the adjustment cannot pass full marks
    (["describes_only"], 0.5, 0.5),                              # clipped to 0, then adjusted
    (["parts"], -2.0, 0.0),
    ([], 1.0, 1.0),
])
def test_the_score_is_the_clipped_sum_plus_the_adjustment_clipped(tmp_path, checked, adjustment, expected):
    assert item_score(answer(tmp_path), checked, adjustment) == expected


def test_an_item_checked_twice_counts_once(tmp_path):
    assert item_score(answer(tmp_path), ["parts", "parts"]) == 0.5


def test_changing_an_items_points_changes_the_score_of_everyone_who_has_it(tmp_path):
    before = answer(tmp_path)
    after = answer(tmp_path, WITH_ITEMS.replace("{id: parts, key: \"1\", points: 0.5",
                                                "{id: parts, key: \"1\", points: 0.75"))
    students = {"a": ["parts"], "b": ["classes"], "c": ["parts", "describes_only"]}
    assert {s: item_score(before, c) for s, c in students.items()} == {"a": 0.5, "b": 0.5, "c": 0.25}
    assert {s: item_score(after, c) for s, c in students.items()} == {"a": 0.75, "b": 0.5, "c": 0.5}


def test_float_noise_is_rounded_away(tmp_path):
    text = WITH_ITEMS.replace("points: 0.25, text: \"Says", "points: 0.1, text: \"Says").replace(
        "points: -0.25", "points: 0.2")
    assert item_score(answer(tmp_path, text), ["noisy", "describes_only"]) == 0.3


def test_unknown_item_ids_are_named(tmp_path):
    with pytest.raises(ValueError, match=r"criterion 'q1_answer' has no item 'nope', 'other' \(its items: parts, "
                                         r"classes, noisy, describes_only\)"):
        item_score(answer(tmp_path), ["parts", "other", "nope"])


def test_a_manual_criterion_without_items_takes_the_adjustment_alone(tmp_path):
    criterion = answer(tmp_path, WITH_ITEMS.split("        items:")[0])
    assert item_score(criterion, [], 0.75) == 0.75
    with pytest.raises(ValueError, match=r"has no item 'parts' \(its items: none\)"):
        item_score(criterion, ["parts"])


def test_an_automatic_criterion_and_a_non_finite_adjustment_are_refused(tmp_path):
    rubric = load_rubric(write(tmp_path, WITH_ITEMS))
    with pytest.raises(ValueError, match="criterion 'q1_accuracy' is automatic"):
        item_score(rubric.questions[0].criteria[0], [])
    with pytest.raises(ValueError, match="must be a finite number, not nan"):
        item_score(rubric.questions[0].criteria[1], ["parts"], float("nan"))
    with pytest.raises(TypeError, match="not one string"):
        item_score(rubric.questions[0].criteria[1], "parts")


def test_a_key_the_review_page_uses_itself_is_refused_with_the_taken_keys(tmp_path):
    found = problems(tmp_path, WITH_ITEMS.replace('key: "2"', 'key: "s"'))
    assert len(found) == 1
    assert "the key 's' is the review page's own (j, k, c, s, h, r are taken)" in found[0]
