"""Claims in a written answer: what a student says the model does, in a form a check can test.

`extract_claims(question_id, answer)` splits the answer into sentences (sentences.py) and runs a
few small rules over each one, using the word tables in lexicon.py. Every claim quotes its
sentence exactly (`answer[claim.start:claim.end] == claim.quote`). A sentence may give several
claims, or none when it says nothing checkable. Nothing here looks at a model.

Kinds and their `subject` (all strings, so claims compare and serialize simply):

- ATTENTION ("attention"): where the model looks. `classes`: the classes the sentence names
  ("高興的臉，梯度集中在上揚的嘴角" is said of Happy's map), empty when it names none (every map).
  subject: the face parts it looks at, canonical
  names from lexicon.PART_TERMS ("brows", "eyes", "mouth", ...), sorted. negated: the parts the
  sentence excludes ("not the hair", "並不是看頭髮", "the background is ignored"). "face" is kept
  only when no part inside the face is named ("inside the face rather than the background" ->
  ("face",), negated ("background",)); 五官 / "facial features" stand for brows, eyes, mouth, nose.
- BEST_CLASS / WORST_CLASS ("best_class", "worst_class"): the class recognised best / worst.
  subject: (label,) as a string, "0".."6" in grader.classes order. One claim per class named.
- CONFUSED_PAIR ("confused_pair"): two classes the model confuses. subject: (true, predicted)
  when the sentence gives the direction ("fear is mistaken for sad" -> ("2", "4"),
  "常把恐懼誤判為難過"), else the two labels sorted. One claim per pair.
- FILTER_PATTERN ("filter_pattern"): what first-layer filters respond to (any sentence of q2, or a
  sentence elsewhere that names filters / a layer / channels). subject: sorted names from
  {"horizontal", "vertical", "diagonal", "lines", "spots", "color", "several_orientations"};
  negated: patterns excluded ("edges rather than colour").
- FREEFORM_SUBJECT ("freeform_subject"): q4 only, a sentence naming an explanation method.
  subject is always a 3-tuple (method, class label or "", part or ""), method one of
  lexicon.METHOD_TERMS ("gradcam", "integrated_gradients", "smoothgrad", "class_model",
  "saliency"). One claim per combination named: "Grad-CAM on Happy highlights the mouth" ->
  ("gradcam", "3", "mouth").

The rules are deliberately simple and local (one sentence, clauses split at commas, colons and
contrast words); see the docstring of each rule for what it reads and what it misses.
"""

import re
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import combinations, product

from grader.claims import lexicon
from grader.claims.sentences import Sentence, split_sentences
from grader.classes import Language

ATTENTION = "attention"
BEST_CLASS = "best_class"
WORST_CLASS = "worst_class"
CONFUSED_PAIR = "confused_pair"
FILTER_PATTERN = "filter_pattern"
FREEFORM_SUBJECT = "freeform_subject"
KINDS = (ATTENTION, BEST_CLASS, WORST_CLASS, CONFUSED_PAIR, FILTER_PATTERN, FREEFORM_SUBJECT)

# A "sentence" longer than this is not prose (a pasted log, a hostile file): it gives no claims,
# which also keeps every rule's cost bounded.
MAX_SENTENCE_CHARS = 2000

# What submission.yaml's visualize.freeform may name (grader.explain.registry.FREEFORM_METHODS;
# tests/test_claim_extraction.py checks they agree).
FREEFORM_CHOICES = frozenset({"class_model", "gradcam", "integrated_gradients", "smoothgrad"})

# Parts inside the face: when one of them is named, "face" adds nothing to the claim.
_INNER_PARTS = frozenset({"eyes", "brows", "nose", "mouth", "forehead", "cheeks", "chin"})
# CJK ideographs: a sentence with any of them is reported as Chinese.
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
# A letter of any script: a "sentence" without one ("1.", "---") cannot claim anything.
_LETTER = re.compile(r"[^\W\d_]")
# Commas and colons end a clause (ASCII and full-width).
_CLAUSE_MARKS = re.compile(r"[,，:：]")


@dataclass(frozen=True)
class Claim:
    """One checkable statement in an answer, quoted exactly (see the module docstring for kinds)."""

    question: str
    quote: str
    start: int
    end: int
    kind: str
    subject: tuple[str, ...]
    negated: tuple[str, ...] = ()
    language: Language = "en"
    classes: tuple[str, ...] = ()  # attention: the classes the sentence says it of ("for Happy ...")


def extract_claims(question_id: str, answer: str) -> list[Claim]:
    """Every claim in `answer` (the text of question `question_id`, e.g. "q1"), in text order."""
    claims: list[Claim] = []
    for sentence in split_sentences(answer):
        if len(sentence.text) <= MAX_SENTENCE_CHARS and _LETTER.search(sentence.text):
            claims.extend(_sentence_claims(question_id, sentence))
    return claims


# ---------------------------------------------------------------- term matching


@dataclass(frozen=True)
class _Mention:
    """A term found in a sentence: where, and the canonical values it stands for."""

    start: int
    end: int
    values: tuple[str, ...]


class _Terms:
    """A compiled term table (term -> canonical values), matched longest-first, whole words for
    Latin terms, case-insensitively; both apostrophes are accepted in contractions."""

    def __init__(self, table: Mapping[str, Iterable[str]]) -> None:
        self._values: dict[str, tuple[str, ...]] = {}
        for term, values in table.items():
            for variant in {term, term.replace("'", "\u2019")}:
                self._values[_normal(variant)] = tuple(values)
        alternatives = sorted(self._values, key=len, reverse=True)
        self._pattern = re.compile("|".join(_term_regex(term) for term in alternatives), re.I)

    @classmethod
    def plain(cls, terms: Iterable[str]) -> "_Terms":
        """A table whose terms stand only for themselves (cues, negations, false friends)."""
        return cls({term: (term,) for term in terms})

    def find(self, text: str) -> list[_Mention]:
        """Non-overlapping mentions, left to right."""
        return [
            _Mention(match.start(), match.end(), self._values.get(_normal(match.group()), ()))
            for match in self._pattern.finditer(text)
        ]

    def blank(self, text: str) -> str:
        """`text` with every mention replaced by spaces, so offsets stay the same."""
        return self._pattern.sub(lambda match: " " * len(match.group()), text)


def _normal(term: str) -> str:
    """A term or matched text in one spelling: lower case, single spaces."""
    return " ".join(term.lower().split())


def _term_regex(term: str) -> str:
    """The regex for one term: whole words at Latin edges, any whitespace for a space."""
    body = re.escape(term).replace(r"\ ", r"\s+")
    if term[:1].isascii() and term[:1].isalpha():
        body = r"(?<![A-Za-z])" + body
    if term[-1:].isascii() and term[-1:].isalpha():
        body += r"(?![A-Za-z])"
    return body


def _inverted(*tables: Mapping[str, Iterable[str]]) -> dict[str, tuple[str, ...]]:
    """key -> terms tables turned into term -> sorted keys (a term under several keys gets all)."""
    values: dict[str, set[str]] = {}
    for table in tables:
        for key, terms in table.items():
            for term in terms:
                values.setdefault(term, set()).add(key)
    return {term: tuple(sorted(keys)) for term, keys in values.items()}


_CLASSES = _Terms(_inverted({str(label): terms for label, terms in lexicon.CLASS_TERMS.items()}))
_PARTS = _Terms(_inverted(lexicon.PART_TERMS) | dict(lexicon.PART_SET_TERMS))
_PATTERNS = _Terms(_inverted(lexicon.PATTERN_TERMS))
_METHODS = _Terms(_inverted(lexicon.METHOD_TERMS))
_PART_FALSE_FRIENDS = _Terms.plain(lexicon.PART_FALSE_FRIENDS)
_FILTER_CONTEXT = _Terms.plain(lexicon.FILTER_CONTEXT_TERMS)
_NEGATIONS = _Terms.plain(lexicon.NEGATION_TERMS)
_VANISHING = _Terms.plain(lexicon.VANISHING_TERMS)
_NEGATION_FALSE_FRIENDS = _Terms.plain(lexicon.NEGATION_FALSE_FRIENDS)
_CONTRASTS = _Terms.plain(lexicon.CONTRAST_TERMS)
_AFFIRMING = re.compile(
    r"\s*(?:" + "|".join(_term_regex(t) for t in sorted(lexicon.AFFIRMING_OPENERS, key=len, reverse=True)) + ")",
    re.I,
)
_ATTENTION_CUES = _Terms.plain(lexicon.ATTENTION_CUES)
_ATTENTION_FALSE_FRIENDS = _Terms.plain(lexicon.ATTENTION_FALSE_FRIENDS)
_BEST = _Terms.plain(lexicon.BEST_CUES)
_WORST = _Terms.plain(lexicon.WORST_CUES)
_BEST_IF_METRIC = _Terms.plain(lexicon.BEST_IF_METRIC_CUES)
_WORST_IF_METRIC = _Terms.plain(lexicon.WORST_IF_METRIC_CUES)
_METRICS = _Terms.plain(lexicon.METRIC_TERMS)
_CONFUSIONS = _Terms.plain(lexicon.CONFUSION_CUES)
_MISTAKES = _Terms.plain(lexicon.MISTAKE_CUES)
_MISTAKES_VERB_FIRST = _Terms.plain(lexicon.MISTAKE_VERB_FIRST_CUES)
_CONFUSION_FALSE_FRIENDS = _Terms.plain(lexicon.CONFUSION_FALSE_FRIENDS)
# Text between two class names that only joins them into a list.
_CONNECTORS = sorted(lexicon.LIST_CONNECTORS, key=len, reverse=True)
_LIST_GAP = re.compile(r"(?:\s+|" + "|".join(_term_regex(t) for t in _CONNECTORS) + r")*", re.I)


# ---------------------------------------------------------------- one sentence, read once


@dataclass(frozen=True)
class _Clause:
    """A stretch of a sentence between commas, colons and contrast words."""

    start: int
    end: int
    after_contrast: bool  # opened by "but"/"而是"..., which ends any negation before it
    has_cue: bool  # says "looks at"/"關注"... itself, so a negation before it does not carry on


@dataclass(frozen=True)
class _Reading:
    """What the rules share about one sentence: its text, clauses, negations and attention cues."""

    text: str
    clauses: tuple[_Clause, ...]
    clause_starts: tuple[int, ...]
    negations: tuple[int, ...]
    vanishing: tuple[int, ...]  # "zero", "接近零": excludes what comes before it in its clause
    cues: tuple[int, ...]
    classes: tuple[_Mention, ...]
    class_groups: tuple[int, ...]
    class_cue_clauses: frozenset[int]  # clauses with a best/worst/confusion cue of their own

    def clause_of(self, position: int) -> _Clause:
        """The clause holding `position`."""
        return self.clauses[self.clause_number(position)]

    def negated_before(self, position: int) -> bool:
        """A negation earlier in the same clause ("not the best", "不容易混淆")."""
        clause = self.clause_of(position)
        return any(clause.start <= negation < position for negation in self.negations)

    def classes_in(self, clause: _Clause) -> list[int]:
        """Indexes of the class mentions inside `clause`."""
        return [i for i, m in enumerate(self.classes) if clause.start <= m.start < clause.end]

    def clause_number(self, position: int) -> int:
        """The index of the clause holding `position`."""
        return max(bisect_right(self.clause_starts, position) - 1, 0)

    def group(self, index: int) -> list[int]:
        """The class mentions listed together with mention `index` ("Fear, Sad and Angry"); a
        list does not reach into another clause that makes its own claim ("Sad is predicted as
        Neutral, and Surprise is mistaken for Fear" keeps Surprise out of the first claim)."""
        home = self.clause_number(self.classes[index].start)
        return [
            i
            for i, g in enumerate(self.class_groups)
            if g == self.class_groups[index]
            and (self.clause_number(self.classes[i].start) == home
                 or self.clause_number(self.classes[i].start) not in self.class_cue_clauses)
        ]

    def labels(self, indexes: Iterable[int]) -> list[str]:
        """The distinct class labels of some class mentions, in text order."""
        return list(dict.fromkeys(v for i in indexes for v in self.classes[i].values))


def _read(text: str) -> _Reading:
    """Find clauses, negations, attention cues and class names in one sentence."""
    cues = tuple(m.start for m in _ATTENTION_CUES.find(_ATTENTION_FALSE_FRIENDS.blank(text)))
    clauses = _clauses(text, cues)
    classes = tuple(_CLASSES.find(text))
    clause_starts = tuple(c.start for c in clauses)
    return _Reading(
        text=text,
        clauses=clauses,
        clause_starts=clause_starts,
        negations=tuple(m.start for m in _NEGATIONS.find(_NEGATION_FALSE_FRIENDS.blank(text))),
        vanishing=tuple(m.start for m in _VANISHING.find(text)),
        cues=cues,
        classes=classes,
        class_groups=_list_groups(text, classes),
        class_cue_clauses=_class_cue_clauses(text, clause_starts),
    )


def _class_cue_clauses(text: str, clause_starts: tuple[int, ...]) -> frozenset[int]:
    """The clauses holding a cue of a claim about classes (best, worst, confusion)."""
    tables = (_BEST, _WORST, _BEST_IF_METRIC, _WORST_IF_METRIC, _CONFUSIONS, _MISTAKES)
    blanked = _CONFUSION_FALSE_FRIENDS.blank(text)
    starts = [m.start for table in (*tables, _MISTAKES_VERB_FIRST) for m in table.find(blanked)]
    return frozenset(max(bisect_right(clause_starts, start) - 1, 0) for start in starts)


def _clauses(text: str, cues: tuple[int, ...]) -> tuple[_Clause, ...]:
    """Split at commas, colons and contrast words; note what opened each clause and its cues."""
    marks = [(m.start(), m.end(), False) for m in _CLAUSE_MARKS.finditer(text)]
    marks += [(m.start, m.end, True) for m in _CONTRASTS.find(text)]
    clauses: list[_Clause] = []
    start, after_contrast = 0, False
    for mark_start, mark_end, contrast in sorted(marks):
        if mark_start >= start:
            clauses.append(_clause(text, start, mark_start, after_contrast, cues))
            start, after_contrast = mark_end, contrast
    clauses.append(_clause(text, start, len(text), after_contrast, cues))
    return tuple(clauses)


def _clause(text: str, start: int, end: int, after_contrast: bool, cues: tuple[int, ...]) -> _Clause:
    """One clause, with whether an attention cue stands inside it; one that opens with "是" or
    "it's" counts as opened by a contrast ("不是背景，是眼睛")."""
    affirms = after_contrast or bool(_AFFIRMING.match(text, start, end))
    return _Clause(start, end, affirms, any(start <= cue < end for cue in cues))


def _list_groups(text: str, classes: tuple[_Mention, ...]) -> tuple[int, ...]:
    """A group number per class mention: neighbours joined only by list words share a group."""
    groups: list[int] = []
    for index, mention in enumerate(classes):
        joined = index > 0 and _LIST_GAP.fullmatch(text, classes[index - 1].end, mention.start)
        groups.append(groups[-1] if joined else index)
    return tuple(groups)


# ---------------------------------------------------------------- the rules


def _sentence_claims(question_id: str, sentence: Sentence) -> list[Claim]:
    """Run every rule over one sentence and turn what they find into claims, without repeats."""
    reading = _read(sentence.text)
    found: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = []
    attention = _attention(reading)
    if attention:
        found.append((ATTENTION, *attention))
    found += [(BEST_CLASS, (label,), ()) for label in _ranked_classes(reading, best=True)]
    found += [(WORST_CLASS, (label,), ()) for label in _ranked_classes(reading, best=False)]
    found += [(CONFUSED_PAIR, pair, ()) for pair in _confused_pairs(reading)]
    patterns = _filter_patterns(question_id, reading)
    if patterns:
        found.append((FILTER_PATTERN, *patterns))
    if patterns:
        # "Filter 12 responds to vertical stripes, like the edge of the nose": in a sentence about
        # the filters' patterns a face part is an analogy, not where the model looks.
        found = [claim for claim in found if claim[0] != ATTENTION]
    if question_id.lower() == "q4":
        # A method that is not a free choice (saliency, LIME) named in Q4 is a comparison.
        freeform = [(FREEFORM_SUBJECT, *subject) for subject in _freeform_subjects(reading)
                    if subject[0][0] in FREEFORM_CHOICES]
        if freeform:
            # "Grad-CAM on Sad highlights the mouth", "Grad-CAM 的熱區沒有落在背景上": the parts are
            # said of the method's (and the class's) map, which the free-choice claim checks; a
            # second attention claim would check them again.
            found = [claim for claim in found if claim[0] != ATTENTION]
        found += freeform
    language: Language = "zh-TW" if _CJK.search(sentence.text) else "en"
    named = tuple(sorted(reading.labels(range(len(reading.classes))), key=int))
    return [
        Claim(question_id, sentence.text, sentence.start, sentence.end, kind, subject, negated, language,
              named if kind == ATTENTION else ())
        for kind, subject, negated in dict.fromkeys(found)
    ]


def _excluded(reading: _Reading, position: int, targets: list[int]) -> bool:
    """Whether the word at `position` is excluded by a negation.

    Either a negation stands before it in its clause ("not the hair", "並不是看頭髮"), or one
    stands in an earlier clause that only commas separate from it, as long as the later clause
    brings no cue of its own ("does not use the eyes, mouth or nose" excludes all three, while
    "does not use the hair, it looks at the eyes" excludes only the hair). A contrast word ends
    the negation ("not the hair but the eyes", "不是頭髮而是眼睛"). Or, passively, nothing
    points at it before it in its clause and a negation follows it ("the background is
    ignored", "背景幾乎沒有梯度"); `targets` are where the other words of the same kind start,
    so a negation followed by one of them governs that one instead ("edges rather than colour").
    """
    if _in_negation_scope(reading, position, targets):
        return True
    index = reading.clause_number(position)
    clause = reading.clauses[index]
    while index > 0 and not clause.after_contrast and not clause.has_cue:
        index -= 1
        clause = reading.clauses[index]
        if any(clause.start <= n < clause.end for n in reading.negations):
            return True
    return _passively_excluded(reading, position, targets)


def _in_negation_scope(reading: _Reading, position: int, targets: list[int]) -> bool:
    """A negation before `position` in its clause, unless a word it governs and then a new cue
    stand between them ("ignores the background and looks at the eyes" keeps the eyes)."""
    clause = reading.clause_of(position)
    negations = [n for n in reading.negations if clause.start <= n < position]
    if not negations:
        return False
    last = negations[-1]
    governed = [t for t in targets if last < t < position]
    return not (governed and any(governed[0] < cue < position for cue in reading.cues))


def _passively_excluded(reading: _Reading, position: int, targets: list[int]) -> bool:
    """After `position` in its clause, a negation that governs no later word of the same kind
    ("the hair is ignored", but not "the eyes and not the hair"), with no cue before `position`
    ("it looks at the eyes which is not surprising" keeps the eyes); a vanishing word ("the
    gradient on the hair is almost zero") excludes even after a cue."""
    clause = reading.clause_of(position)

    def governs_before(negation: int) -> bool:
        return position < negation < clause.end and not any(negation < t < clause.end for t in targets)

    if any(governs_before(v) for v in reading.vanishing) or _vanishes_after_colon(reading, clause, targets):
        return True
    if any(clause.start <= cue < position for cue in reading.cues):
        return False
    return any(governs_before(n) for n in reading.negations)


def _vanishes_after_colon(reading: _Reading, clause: _Clause, targets: list[int]) -> bool:
    """"下巴跟臉頰：很少被注意到", "Background: almost nothing": a clause ending in a colon whose
    next clause says, before naming anything else, that the map vanishes there."""
    if reading.text[clause.end:clause.end + 1] not in (":", "："):
        return False
    following = next((c for c in reading.clauses if c.start > clause.end), None)
    if following is None:
        return False
    first = min((t for t in targets if following.start <= t < following.end), default=following.end)
    return any(following.start <= v < first for v in reading.vanishing)


def _split_by_negation(
    reading: _Reading, mentions: Iterable[_Mention]
) -> tuple[list[_Mention], set[str]]:
    """The mentions a sentence affirms, and the values it excludes."""
    mentions = list(mentions)
    targets = [m.start for m in mentions]
    kept: list[_Mention] = []
    excluded: set[str] = set()
    for mention in mentions:
        if _excluded(reading, mention.start, targets):
            excluded.update(mention.values)
        else:
            kept.append(mention)
    return kept, excluded


def _without_face(parts: set[str]) -> set[str]:
    """Drop "face" when a part inside the face is named: "the face, especially the eyes" = eyes."""
    return parts - {"face"} if parts & _INNER_PARTS else parts


def _attention(reading: _Reading) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """Where the model looks: (parts, excluded parts), or None when the sentence says nothing.

    Needs an attention cue (look at, focus on, 關注, 重視, 集中, 梯度, 重要 ...). The parts
    counted are those after the first cue ("the model focuses on the nose, mouth and eyes",
    "模型重視的區域會在鼻子、嘴、眼睛等五官的附近"), or, when none follow it, those before it
    ("the mouth is what the model relies on"); this keeps "高興的臉，梯度集中在嘴角" to the mouth.
    Excluded parts count wherever they stand.
    """
    if not reading.cues and not reading.vanishing:  # "Background: almost nothing" says where it is not
        return None
    mentions = _PARTS.find(_PART_FALSE_FRIENDS.blank(reading.text))
    kept, excluded = _split_by_negation(reading, mentions)
    after_cue = [m for m in kept if reading.cues and m.start >= reading.cues[0]]
    parts = {value for m in (after_cue or kept) for value in m.values} - excluded
    parts = _without_face(parts)
    if not parts and not excluded:
        return None
    return tuple(sorted(parts)), tuple(sorted(excluded))


def _ranked_classes(reading: _Reading, best: bool) -> list[str]:
    """Classes said to be recognised best (or worst), one per cue.

    A cue ("best", "worst", "表現最好", "準確率最低", or "highest"/"最低" in a sentence that
    names a score: "對角線上的數字代表正確率，開心最高") picks the nearest class name in its
    clause, plus the classes listed with it ("Happy and Surprise are recognised best"). A negation before the cue in its clause ("not
    the best") drops it. Comparatives ("better than") are not claims about the best class.
    """
    strong, if_metric = (_BEST, _BEST_IF_METRIC) if best else (_WORST, _WORST_IF_METRIC)
    cues = strong.find(reading.text)
    if _METRICS.find(reading.text):
        cues += if_metric.find(reading.text)
    labels: list[str] = []
    for cue in cues:
        if reading.negated_before(cue.start):
            continue
        nearest = _nearest_class(reading, cue)
        if nearest is not None:
            labels += reading.labels(reading.group(nearest))
    return list(dict.fromkeys(labels))


def _nearest_class(reading: _Reading, cue: _Mention) -> int | None:
    """The class mention in the cue's clause closest to the cue, before or after it; in a clause
    that names no class, the nearest one in the clause next to it ("Disgust 的 recall 只有 0.32，是
    七類裡最低的", "最好：高興"), when that clause makes no claim about classes of its own."""
    candidates = reading.classes_in(reading.clause_of(cue.start)) or _neighbouring_classes(reading, cue.start)

    def distance(index: int) -> int:
        mention = reading.classes[index]
        return cue.start - mention.end if mention.end <= cue.start else mention.start - cue.end

    return min(candidates, key=distance, default=None)


def _neighbouring_classes(reading: _Reading, position: int) -> list[int]:
    """The class mentions of the clause before `position`'s clause, else of the clause after it,
    skipping a clause with a class cue of its own (it makes its own claim)."""
    number = reading.clause_number(position)
    for neighbour in (number - 1, number + 1):
        if 0 <= neighbour < len(reading.clauses) and neighbour not in reading.class_cue_clauses:
            found = reading.classes_in(reading.clauses[neighbour])
            if found:
                return found
    return []


def _confused_pairs(reading: _Reading) -> list[tuple[str, str]]:
    """Pairs of classes said to be confused, directed where the sentence says which way.

    Directed, true class first: "fear is mistaken for sad", "恐懼常被誤判為難過", "常把恐懼誤判為
    難過" (cue between the two), "the model misclassifies fear as sad" (verb first). Undirected,
    sorted: "fear and sad are confused", "恐懼和難過容易混淆", "confusion between fear and sad";
    "難過、生氣與厭惡也互相混淆" gives every pair of the list. "The confusion matrix" is not a
    cue; a negation before the cue ("rarely confused", "不容易混淆") drops it.
    """
    text = _CONFUSION_FALSE_FRIENDS.blank(reading.text)
    directed = _MISTAKES.find(text)
    taken = [(m.start, m.end) for m in directed]
    verb_first = [m for m in _MISTAKES_VERB_FIRST.find(text) if not _overlaps(m, taken)]
    undirected = [m for m in _CONFUSIONS.find(text) if not _overlaps(m, taken)]
    pairs: list[tuple[str, str]] = []
    for cue in directed:
        pairs += _directed_pairs(reading, cue) or _undirected_pairs(reading, cue)
    for cue in verb_first:
        pairs += _verb_first_pairs(reading, cue)
    for cue in undirected:
        pairs += _undirected_pairs(reading, cue)
    return list(dict.fromkeys(pairs))


def _overlaps(mention: _Mention, spans: list[tuple[int, int]]) -> bool:
    """Whether `mention` overlaps any of `spans`."""
    return any(mention.start < end and start < mention.end for start, end in spans)


def _sides(reading: _Reading, cue: _Mention) -> tuple[list[int], list[int]]:
    """The class mentions of the cue's clause before it and after it (each with its list)."""
    inside = reading.classes_in(reading.clause_of(cue.start))
    before = [i for i in inside if reading.classes[i].end <= cue.start]
    after = [i for i in inside if reading.classes[i].start >= cue.end]
    return (reading.group(before[-1]) if before else []), (reading.group(after[0]) if after else [])


def _directed_pairs(reading: _Reading, cue: _Mention) -> list[tuple[str, str]]:
    """(true, predicted) for a cue between the two classes: "X is mistaken for Y", "把X誤判為Y"."""
    if reading.negated_before(cue.start):
        return []
    before, after = _sides(reading, cue)
    if not before and after:
        # "第二難分的是恐懼，常被當成驚訝或難過": the true class ends the clause before.
        earlier = [i for i in _neighbouring_classes(reading, cue.start) if reading.classes[i].end <= cue.start]
        before = reading.group(earlier[-1]) if earlier else []
    return [(t, p) for t, p in product(reading.labels(before), reading.labels(after)) if t != p]


def _verb_first_pairs(reading: _Reading, cue: _Mention) -> list[tuple[str, str]]:
    """(true, predicted) for "misclassifies X as Y": the first class list after the verb, then the next."""
    if reading.negated_before(cue.start):
        return []
    clause = reading.clause_of(cue.start)
    after = [i for i in reading.classes_in(clause) if reading.classes[i].start >= cue.end]
    if not after:
        return []
    first = reading.group(after[0])
    rest = [i for i in after if i not in first]
    if not rest:
        return []
    second = reading.group(rest[0])
    return [(t, p) for t, p in product(reading.labels(first), reading.labels(second)) if t != p]


def _undirected_pairs(reading: _Reading, cue: _Mention) -> list[tuple[str, str]]:
    """Sorted pairs for "X and Y are confused": across the cue if classes stand on both sides,
    else every pair of the classes on the one side ("難過、生氣與厭惡也互相混淆", "cannot tell
    Fear from Sad")."""
    if reading.negated_before(cue.start):
        return []
    before, after = _sides(reading, cue)
    if before and after:
        pairs = product(reading.labels(before), reading.labels(after))
    else:
        inside = reading.classes_in(reading.clause_of(cue.start))
        pairs = combinations(reading.labels(sorted(set(inside) | set(before) | set(after))), 2)
    return [(a, b) if a < b else (b, a) for a, b in pairs if a != b]


def _filter_patterns(
    question_id: str, reading: _Reading
) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """What filters respond to: (patterns, excluded patterns), or None.

    In q2 any sentence naming a pattern counts ("the first layer's filters respond to simple
    lines: horizontal, vertical, diagonal, or spots", "多半是不同方向的邊緣偵測器"); elsewhere
    the sentence must also name filters, a layer or channels, so "the lighting" in a q1 answer
    is not read as a filter claim.
    """
    if question_id.lower() != "q2" and not _FILTER_CONTEXT.find(reading.text):
        return None
    kept, excluded = _split_by_negation(reading, _PATTERNS.find(reading.text))
    patterns = {value for m in kept for value in m.values} - excluded
    if not patterns and not excluded:
        return None
    return tuple(sorted(patterns)), tuple(sorted(excluded))


def _freeform_subjects(reading: _Reading) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
    """q4: (method, class or "", part or "") for each combination a sentence naming a method gives.

    "Grad-CAM on Happy highlights the mouth" -> ("gradcam", "3", "mouth"); "我選擇積分梯度" ->
    ("integrated_gradients", "", ""). Every method named counts, including one only mentioned
    for comparison. Excluded parts go to `negated`.
    """
    methods = list(dict.fromkeys(v for m in _METHODS.find(reading.text) for v in m.values))
    if not methods:
        return []
    classes = reading.labels(range(len(reading.classes))) or [""]
    parts_found = _PARTS.find(_PART_FALSE_FRIENDS.blank(reading.text))
    kept, excluded = _split_by_negation(reading, parts_found)
    parts = sorted(_without_face({v for m in kept for v in m.values} - excluded)) or [""]
    negated = tuple(sorted(excluded))
    return [((method, label, part), negated) for method, label, part in product(methods, classes, parts)]
