"""A similarity report over the submissions: which pairs look copied, and why.

Trusted-side and pure: it reads what the grader already has, and parses no student binary. The
weights enter as a fingerprint (grader.fingerprint) that the sandbox computed from the loaded
model (`ModelProtocol.weights_fingerprint`) and the batch kept in the student's output folder;
the model source is read as bounded text and only parsed with `ast`; the predictions on the
evaluation set come from the batch's own arrays. Loading a weights file here would run a
TorchScript file's code as the grader (a `__setstate__` that loops forever hangs the whole
class's report) and let a compressed tensor inflate in the grader's memory.

Three independent signals, each with its own threshold (`SimilarityThresholds`):

weights      `weights_similarity`: the weights matched by shape, whatever the parameter names,
             each shape-matched pair scored by the absolute Pearson correlation of its values,
             weighted by tensor size. Identical weights give 1, a copy with small noise or a few
             epochs of fine-tuning stays near 1, independently trained models of one architecture
             give about 0 (a fresh initialization is uncorrelated with any other). Strong evidence.
source       `normalized_source`: model.py without comments, docstrings, annotations, formatting
             or the student's own names. Only an exact match is flagged, and it is weak evidence
             alone: students start from the course's template, so an unchanged template matches
             every other unchanged template (pass the template to `find_similar_pairs` to ignore
             it). `source_similarity`'s ratio below 1 is shown for flagged pairs, never flagged.
predictions  `prediction_agreement`: agreement beyond what two models that err independently
             (given each one's confusion matrix) would show, and above all whether they make the
             same mistakes: on the faces at least one of them got wrong, two honest models
             disagree often (one is right, or they pick different wrong classes); a copy makes
             the same mistakes and only those.

`gather_evidence` collects one submission's evidence; `find_similar_pairs` compares every pair (a few
hundred submissions, 200 in about a second: fingerprints are computed once, weights are compared
only tensor by tensor of equal shape, largest first, stopping as soon as the threshold is out of
reach; the prediction signal is screened for all pairs at once with matrix products); and
`write_similarity_csv` writes similarity.csv.
"""

from __future__ import annotations

import ast
import builtins
import csv
import difflib
import functools
import hashlib
import inspect
import io
import math
import os
import re
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment  # scipy comes with scikit-learn and lime

from grader.atomic import atomic_write_text
from grader.escape import csv_cell
from grader.fingerprint import FingerprintError, ShapeGroup, WeightsFingerprint, read_fingerprint
from grader.submission.folder import SubmissionFolder
from grader.submission.spec import SPEC_FILE, SubmissionSpec

MAX_SOURCE_BYTES = 1 * 2**20
"""A model source larger than this gives no source evidence."""

SIGNALS = ("weights", "source", "predictions")


# --- weights --------------------------------------------------------------------------------


def weights_similarity(a: WeightsFingerprint, b: WeightsFingerprint) -> float:
    """How alike two models' weights are, in [0, 1], whatever their parameter names, from their
    fingerprints (grader.fingerprint; computed from tensors by grader.submission.fingerprint).

    Tensors are matched by shape: within each shape the pairs that correlate most are matched one
    to one (an optimal assignment, so renamed and reordered modules still meet their copies), and
    each matched pair scores the absolute Pearson correlation of its values (two constant tensors
    score 1 when their values are equal). The score is the size-weighted sum over matched pairs,
    counted once for each side, over the values of both models together (a Dice coefficient):
    unmatched tensors count 0, so models with no shape in common score 0 and a copy with a layer
    added scores its share of the weights. Identical weights give exactly 1; weights plus small
    noise, or a copy fine-tuned a little, stay near 1; independently initialized or trained models
    of the same architecture score near 0 (a few hundredths; small tensors, such as a 7-way bias,
    correlate more by chance but weigh little).

    Caveats: models trained from the same initialization (a template that fixes the seed) keep
    part of it: two small CNNs trained for six epochs from one seed scored 0.63. A copy whose
    channels were permuted consistently (the same function) is not matched.
    """
    score = _weights_score(a, b, floor=None)
    assert score is not None
    return score


def _weights_score(a: WeightsFingerprint, b: WeightsFingerprint, floor: float | None) -> float | None:
    """weights_similarity(a, b), or None as soon as it is certain to stay below `floor`: the
    shape groups are compared largest first, so an unrelated pair stops after its biggest tensor."""
    total = a.total + b.total
    if total == 0:
        return 0.0
    if a.digest == b.digest:
        return 1.0
    shared = [(group, b.by_shape[group.shape]) for group in a.largest_first if group.shape in b.by_shape]
    still_possible = sum(g.size * min(g.count, h.count) for g, h in shared)
    matched = 0.0
    for group_a, group_b in shared:
        if floor is not None and 2.0 * (matched + still_possible) / total < floor:
            return None
        still_possible -= group_a.size * min(group_a.count, group_b.count)
        matched += group_a.size * _best_matching(_correlations(group_a, group_b))
    score = float(min(1.0, max(0.0, 2.0 * matched / total)))
    return None if floor is not None and score < floor else score


def shared_shape_bound(a: WeightsFingerprint, b: WeightsFingerprint) -> float:
    """The most `weights_similarity(a, b)` can be: the share of values whose shapes the other has."""
    if a.total + b.total == 0:
        return 0.0
    shared = sum(group.size * min(group.count, b.by_shape[group.shape].count)
                 for group in a.groups if group.shape in b.by_shape)
    return 2.0 * shared / (a.total + b.total)


def _correlations(a: ShapeGroup, b: ShapeGroup) -> np.ndarray:
    """|Pearson correlation| of every tensor of `a` with every tensor of `b` (same shape)."""
    scores = np.abs(a.units @ b.units.T).astype(np.float64)
    if a.has_constants and b.has_constants:
        difference = np.abs(a.constants[:, None] - b.constants[None, :])
        with np.errstate(invalid="ignore"):
            equal = difference <= 1e-12 + 1e-6 * np.abs(b.constants[None, :])  # False where either is NaN
        both = ~np.isnan(a.constants)[:, None] & ~np.isnan(b.constants)[None, :]
        scores[both] = equal[both]
    scores[a.digests[:, None] == b.digests[None, :]] = 1.0
    return np.minimum(scores, 1.0, out=scores)


def _best_matching(scores: np.ndarray) -> float:
    """The largest sum of scores over a one-to-one matching of rows to columns."""
    if scores.size == 1:
        return float(scores[0, 0])
    rows, cols = linear_sum_assignment(scores, maximize=True)
    return float(scores[rows, cols].sum())


# --- source ---------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def known_names() -> frozenset[str]:
    """Names `normalized_source` keeps unless the file binds them: Python's builtins, what torch, torch.nn,
    torch.nn.functional, nn.Module and torch.Tensor define, the parameters of torch.nn's layers
    (padding, stride, ...), and the usual aliases of those modules (torch, nn, F)."""
    from torch import nn
    from torch.nn import functional

    names = set(dir(builtins)) | {"torch", "nn", "F", "functional"}
    for namespace in (torch, nn, functional, nn.Module, torch.Tensor):
        names.update(dir(namespace))
    for value in vars(nn).values():
        if isinstance(value, type) and issubclass(value, nn.Module):
            try:
                names.update(inspect.signature(value.__init__).parameters)
            except (TypeError, ValueError):
                continue
    return frozenset(n for n in names if n.isidentifier())


class _Normalizer(ast.NodeTransformer):
    """Drops docstrings, bare strings and annotations; renames the student's identifiers to
    placeholders in order of first appearance.

    A name is the student's when the file binds it anywhere (a class, function, argument,
    variable, `self.x = ...` attribute, import alias, exception or loop name; not `forward` or
    another nn.Module method), or when it is none of `known_names()`; the others (nn.Conv2d,
    F.relu, x.flatten, super, padding=...) stay. A function's arguments and local variables get
    placeholders of their own, a0, a1, ... (b0, ... in a nested function), counted afresh in each
    function, so that `x` in one method and `img` in another normalize alike; every other name
    gets v0, v1, ..., the same one wherever it occurs in the file."""

    def __init__(self, tree: ast.AST) -> None:
        self.names: dict[str, str] = {}
        bound, self.aliases = _bound_names(tree)
        self.known = known_names() - bound
        self.scopes: list[tuple[set[str], dict[str, str]]] = []

    def rename(self, name: str) -> str:
        if name in self.aliases:
            return self.aliases[name]
        if name in self.known:
            return name
        return self.names.setdefault(name, f"v{len(self.names)}")

    def rename_variable(self, name: str) -> str:
        """A Name or an argument: the innermost function's local placeholder, if it is one."""
        for depth in range(len(self.scopes) - 1, -1, -1):
            local, placeholders = self.scopes[depth]
            if name in local:
                letter = "abcdefghijklmnopqrstu"[min(depth, 20)]
                return placeholders.setdefault(name, f"{letter}{len(placeholders)}")
        return self.rename(name)

    def _body(self, statements: list[ast.stmt]) -> list[ast.stmt]:
        kept = [s for s in statements
                if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant) and isinstance(s.value.value, str))]
        return kept or [ast.Pass()]

    def generic_visit(self, node: ast.AST) -> ast.AST:
        for name, value in ast.iter_fields(node):
            if isinstance(value, list) and value and isinstance(value[0], ast.stmt):
                setattr(node, name, self._body(value))
        return super().generic_visit(node)

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> ast.AST:
        node.name = self.rename_variable(node.name)
        node.returns = None
        # Decorators and defaults belong to the enclosing scope; arguments and body to the function's.
        node.decorator_list = [self.visit(d) for d in node.decorator_list]
        node.args.defaults = [self.visit(d) for d in node.args.defaults]
        node.args.kw_defaults = [None if d is None else self.visit(d) for d in node.args.kw_defaults]
        self.scopes.append((_local_names(node), {}))
        try:
            arguments = node.args
            for group in (arguments.posonlyargs, arguments.args, [arguments.vararg], arguments.kwonlyargs,
                          [arguments.kwarg]):
                for argument in group:
                    if argument is not None:
                        self.visit(argument)
            node.body = [self.visit(statement) for statement in self._body(node.body)]
        finally:
            self.scopes.pop()
        return node

    visit_FunctionDef = _function
    visit_AsyncFunctionDef = _function

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:
        node.name = self.rename_variable(node.name)
        return self.generic_visit(node)

    def visit_arg(self, node: ast.arg) -> ast.AST:
        node.arg = self.rename_variable(node.arg)
        node.annotation = None
        return node

    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.AST:
        if node.value is None:
            return ast.copy_location(ast.Pass(), node)
        return self.visit(ast.copy_location(ast.Assign(targets=[node.target], value=node.value), node))

    def visit_Name(self, node: ast.Name) -> ast.AST:
        node.id = self.rename_variable(node.id)
        return node

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        self.generic_visit(node)
        node.attr = self.rename(node.attr)
        return node

    def visit_keyword(self, node: ast.keyword) -> ast.AST:
        if node.arg is not None:
            node.arg = self.rename(node.arg)
        return self.generic_visit(node)

    def visit_alias(self, node: ast.alias) -> ast.AST:
        if node.asname is not None:  # the module's canonical alias, or a placeholder
            node.asname = self.rename(node.asname)
        return node

    def _names(self, node: ast.Global | ast.Nonlocal) -> ast.AST:
        node.names = [self.rename_variable(n) for n in node.names]
        return node

    visit_Global = _names
    visit_Nonlocal = _names

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> ast.AST:
        if node.name is not None:
            node.name = self.rename_variable(node.name)
        return self.generic_visit(node)


CANONICAL_ALIASES = {"torch": "torch", "torch.nn": "nn", "torch.nn.functional": "F", "numpy": "np"}
"""`import torch.nn as tnn` is normalized to `import torch.nn as nn`, and every tnn to nn."""


def _bound_names(tree: ast.AST) -> tuple[set[str], dict[str, str]]:
    """The names the file binds, and its aliases of the modules in CANONICAL_ALIASES. A method or
    attribute that nn.Module already has (__init__, forward, self.training) is not the student's."""
    module_names = _module_names()
    bound: set[str] = set()
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) or (isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                                              and node.name not in module_names):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            bound.add(node.id)
        elif isinstance(node, ast.Attribute) and not isinstance(node.ctx, ast.Load) and node.attr not in module_names:
            bound.add(node.attr)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                if alias.asname is None:
                    continue
                full = alias.name if isinstance(node, ast.Import) else f"{node.module}.{alias.name}"
                if full in CANONICAL_ALIASES:
                    aliases[alias.asname] = CANONICAL_ALIASES[full]
                else:
                    bound.add(alias.asname)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            bound.update(node.names)
        elif isinstance(node, ast.ExceptHandler) and node.name is not None:
            bound.add(node.name)
    return bound, aliases


def _local_names(function: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    """The function's arguments and the names its own body binds (not those of functions or
    classes nested in it, which get their own placeholders), less those it declares global or
    nonlocal."""
    arguments = function.args
    local = {a.arg for a in (*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs,
                             arguments.vararg, arguments.kwarg) if a is not None}
    declared: set[str] = set()
    pending: list[ast.AST] = list(function.body)
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            local.add(node.name)
            pending.extend(node.decorator_list)
            continue
        if isinstance(node, ast.Lambda):
            continue
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            local.add(node.id)
        elif isinstance(node, ast.ExceptHandler) and node.name is not None:
            local.add(node.name)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            declared.update(node.names)
        pending.extend(ast.iter_child_nodes(node))
    return local - declared


@functools.lru_cache(maxsize=1)
def _module_names() -> frozenset[str]:
    return frozenset(dir(torch.nn.Module))


def normalized_source(text: str) -> str:
    """Python source with comments, docstrings, annotations, formatting and the student's own
    names taken out, so that two files differing only in those normalize to the same string.

    The text is parsed with `ast` (never imported or run); docstrings and other bare string
    statements and type annotations are dropped; aliases of torch, torch.nn, torch.nn.functional
    and numpy become torch, nn, F and np; every other identifier the file binds (class,
    function, argument, variable, `self.conv1 = ...` attribute, import alias; not a method or
    attribute nn.Module has, such as forward) or that is not in `known_names()` (builtins,
    torch/nn/F and Tensor/Module names, nn layer parameters) becomes a placeholder in order of
    first appearance: a0, a1, ... for a function's arguments and locals, counted afresh in each
    function, and v0, v1, ... for the rest, the same wherever it occurs (keyword arguments and
    attributes included). What stays is the API the model is built from: nn.Conv2d(1, 32, 3,
    padding=1), x.flatten(1), super(). Then `ast.unparse` writes it in one canonical layout.
    Module names in import statements are kept (`from torch import nn` and `import torch.nn as
    nn` differ). Text that does not parse falls back to its lines without comments, blank lines
    or runs of spaces.
    """
    try:
        tree = ast.parse(text)
        tree = ast.fix_missing_locations(_Normalizer(tree).visit(tree))
        return ast.unparse(tree)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return _stripped_lines(text)


def _stripped_lines(text: str) -> str:
    lines = (re.sub(r"\s+", " ", re.sub(r"#.*", "", line)).strip() for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def source_similarity(a: str, b: str) -> float:
    """1.0 when the normalized sources are equal, else difflib's SequenceMatcher ratio over their
    lines. `a` and `b` are normalized sources (`normalized_source`). A ratio below 1 is context,
    not evidence: everyone's model.py grows from the same template and the same nn layers."""
    if a == b:
        return 1.0
    return difflib.SequenceMatcher(None, a.splitlines(), b.splitlines(), autojunk=False).ratio()


# --- predictions ----------------------------------------------------------------------------


@dataclass(frozen=True)
class AgreementStats:
    """How two models' predictions on one labeled evaluation set agree, against chance.

    observed: share of faces where the two predictions are equal.
    expected: the same if the two models erred independently given the true class, each with its
        own confusion matrix: sum over y of P(y) * sum over k of P_a(k|y) * P_b(k|y). Its k = y
        terms are "both right", sum_y P(y) recall_a(y) recall_b(y), the class-wise form of
        acc_a * acc_b (which ignores that both models find some classes easier, and so expects
        too little agreement for honest pairs); its k != y terms are "both wrong the same way".
    excess: (observed - expected) / sqrt(expected * (1 - expected) / n), a z-score. It grows with
        sqrt(n), and honest models exceed independence too (they find the same faces hard), so
        it is a guard against chance, not the verdict alone.
    relative_excess: (observed - expected) / (1 - expected), Cohen's kappa against the
        independence baseline; it does not grow with n.
    both_wrong, either_wrong: how many faces both models, or at least one, got wrong.
    error_jaccard: both_wrong / either_wrong, how much the two sets of mistakes overlap.
    error_agreement: among the faces at least one model got wrong, the share where the two
        predictions are equal (error_jaccard times joint_error_agreement): the sharpest sign of a
        copy, which makes the same mistakes, and only those (NaN when neither errs).
    joint_error_agreement: among the faces both got wrong, the share with the same wrong class
        (NaN when none is wrong for both). Alone it does not separate copies: on faces that are
        truly ambiguous between two expressions, honest models that both err pick the same wrong
        class (93-96% for the examples on the bundled data, where independence expects 55%).
    expected_error_agreement, expected_joint_error_agreement: the same two under independence
        given the true class.
    """

    n: int
    accuracy_a: float
    accuracy_b: float
    observed: float
    expected: float
    excess: float
    relative_excess: float
    both_wrong: int
    either_wrong: int
    error_jaccard: float
    error_agreement: float
    expected_error_agreement: float
    joint_error_agreement: float
    expected_joint_error_agreement: float


@dataclass(frozen=True, eq=False)
class _PredictionPrint:
    predictions: np.ndarray
    labels: np.ndarray
    correct: np.ndarray
    conditional: np.ndarray  # (K, K) P(prediction k | true class y)


def _prediction_print(predictions: np.ndarray, labels: np.ndarray, classes: int) -> _PredictionPrint:
    counts = np.zeros((classes, classes), dtype=np.float64)
    np.add.at(counts, (labels, predictions), 1.0)
    rows = counts.sum(axis=1, keepdims=True)
    conditional = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
    return _PredictionPrint(predictions, labels, predictions == labels, conditional)


def _as_labels(values: np.ndarray, what: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1 or not (np.issubdtype(array.dtype, np.integer) or array.size == 0):
        raise ValueError(f"{what} must be a 1-d integer array, got {array.dtype} {array.shape}")
    if array.size and array.min() < 0:
        raise ValueError(f"{what} must be class indices >= 0")
    return array.astype(np.int64, copy=False)


def prediction_agreement(pred_a: np.ndarray, pred_b: np.ndarray, labels: np.ndarray) -> AgreementStats:
    """Agreement of two models' predictions (N,) on the same evaluation faces with `labels` (N,),
    against what independent errors would give (see `AgreementStats` for each number)."""
    pred_a, pred_b = _as_labels(pred_a, "pred_a"), _as_labels(pred_b, "pred_b")
    labels = _as_labels(labels, "labels")
    if not (pred_a.shape == pred_b.shape == labels.shape) or labels.size == 0:
        raise ValueError(f"predictions and labels must be non-empty and of one length, got "
                         f"{pred_a.shape}, {pred_b.shape}, {labels.shape}")
    classes = int(max(pred_a.max(), pred_b.max(), labels.max())) + 1
    prior = np.bincount(labels, minlength=classes) / labels.size
    return _agreement(_prediction_print(pred_a, labels, classes), _prediction_print(pred_b, labels, classes), prior)


def _agreement(a: _PredictionPrint, b: _PredictionPrint, prior: np.ndarray) -> AgreementStats:
    n = a.labels.size
    same = a.predictions == b.predictions
    observed = float(same.mean())
    joint = np.einsum("y,yk,yk->yk", prior, a.conditional, b.conditional)
    expected = float(joint.sum())
    expected_right = float(np.trace(joint))
    diagonal_a, diagonal_b = np.diag(a.conditional), np.diag(b.conditional)
    expected_both_wrong = float((prior * (1 - diagonal_a) * (1 - diagonal_b)).sum())
    variance = expected * (1 - expected) / n
    if variance > 0:
        excess = (observed - expected) / math.sqrt(variance)
    else:
        excess = 0.0 if observed == expected else math.copysign(math.inf, observed - expected)
    relative = (observed - expected) / (1 - expected) if expected < 1 else 0.0
    wrong_a, wrong_b = ~a.correct, ~b.correct
    both, either = wrong_a & wrong_b, wrong_a | wrong_b
    both_wrong, either_wrong = int(both.sum()), int(either.sum())
    return AgreementStats(
        n=n,
        accuracy_a=float(a.correct.mean()),
        accuracy_b=float(b.correct.mean()),
        observed=observed,
        expected=expected,
        excess=float(excess),
        relative_excess=float(relative),
        both_wrong=both_wrong,
        either_wrong=either_wrong,
        error_jaccard=both_wrong / either_wrong if either_wrong else math.nan,
        error_agreement=float(same[either].mean()) if either_wrong else math.nan,
        expected_error_agreement=(expected - expected_right) / (1 - expected_right) if expected_right < 1 else math.nan,
        joint_error_agreement=float(same[both].mean()) if both_wrong else math.nan,
        expected_joint_error_agreement=((expected - expected_right) / expected_both_wrong
                                        if expected_both_wrong > 0 else math.nan),
    )


# --- evidence and pairs ---------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class SubmissionEvidence:
    """What the similarity report knows of one submission; a field it could not read is None.

    weights: the fingerprint of the loaded model's weights (grader.fingerprint), as the sandbox
        computed it.
    source: the normalized model source (`normalized_source`); source_name the file it came from.
    predictions, labels: (N,) the model's predicted and the true classes on the evaluation set
        (arrays/confusion.npz in the student's output folder).
    notes: why a field is missing, in words (for the grader's log; never raised).
    """

    student_id: str
    folder: Path
    weights: WeightsFingerprint | None = None
    source: str | None = None
    predictions: np.ndarray | None = None
    labels: np.ndarray | None = None
    source_name: str | None = None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class SimilarityThresholds:
    """When a pair is flagged; calibrated on the example submissions (tests/test_similarity.py).

    weights: `weights_similarity` at or above this. The examples (all different architectures)
        reach 0.007 at most against each other, and 0.005-0.03 against a fresh initialization of
        their own architecture; a copy with Gaussian noise of 1e-3 (3e-2) of each tensor's spread
        scores 0.99999 (0.9996), a copy fine-tuned for an epoch 0.999. Two small CNNs trained
        from the same seed on different batch orders scored 0.63, from different seeds 0.02: a
        course template that fixes the seed makes honest weights correlate, so do not lower this
        much.
    source: flag sources that are equal after normalization (False: never flag on source). No
        two examples are; their closest pair is 0.70 alike.
    prediction_excess: the agreement's z-score at or above this: a guard against chance on small
        evaluation sets, not the verdict. Honest example pairs reach z 23 on the 3,589 bundled
        faces (z grows with sqrt(n)); a copy 31-58, a copy with 2% of its predictions changed 30-57.
    error_agreement: agreement on the faces at least one of the two got wrong, at or above this.
        Honest example pairs reach 0.61 on the bundled faces (0.64 on a 500-face set), where
        independence expects about 0.06; a copy scores 1, a copy with 2% of its predictions
        changed 0.86-0.96, a copy with weight noise of 3e-2 of each tensor's spread 0.84-0.91.
    min_errors: fewer faces wrong for at least one of the two make error_agreement meaningless.
    """

    weights: float = 0.98
    source: bool = True
    prediction_excess: float = 5.0
    error_agreement: float = 0.8
    min_errors: int = 20


@dataclass(frozen=True)
class SimilarPair:
    """Two submissions flagged by at least one signal (`signals`, in SIGNALS' order).

    weights_similarity: None when either has no weights evidence; weights_identical when the two
    fingerprints are equal. source_identical: None when either has no source; source_similarity
    the ratio (informational). agreement: None without predictions on a shared evaluation set.
    reason: one line in words.
    """

    student_a: str
    student_b: str
    signals: tuple[str, ...]
    weights_similarity: float | None
    weights_identical: bool
    source_identical: bool | None
    source_similarity: float | None
    agreement: AgreementStats | None
    reason: str
    folder_a: Path | None = None
    folder_b: Path | None = None

    @property
    def prediction_excess(self) -> float | None:
        return None if self.agreement is None else self.agreement.excess

    @property
    def error_agreement(self) -> float | None:
        return None if self.agreement is None else self.agreement.error_agreement


def find_similar_pairs(submissions: Sequence[SubmissionEvidence],
                       thresholds: SimilarityThresholds = SimilarityThresholds(), *,
                       templates: Iterable[str] = ()) -> list[SimilarPair]:
    """Every pair of submissions that at least one signal flags, most signals first.

    A pair is flagged for weights when `weights_similarity` >= thresholds.weights; for source
    when both normalized sources are equal (and not equal to the normalized form of one of
    `templates`, the raw source files the course handed out); for predictions when, on the same
    evaluation set (equal labels), the agreement's excess z >= thresholds.prediction_excess and
    its error_agreement (on the faces at least one got wrong, at least thresholds.min_errors of
    them) >= thresholds.error_agreement. For a flagged pair every available signal's value is filled in.
    """
    template_sources = {normalized_source(text) for text in templates}
    screen = _PredictionScreen(submissions, thresholds)
    pairs = []
    for i, a in enumerate(submissions):
        for j in range(i + 1, len(submissions)):
            pair = _compare(a, submissions[j], screen.pair(i, j), thresholds, template_sources)
            if pair is not None:
                pairs.append(pair)
    pairs.sort(key=lambda p: (-len(p.signals), -(p.weights_similarity or 0.0)))
    return pairs


class _PredictionScreen:
    """The prediction signal for all pairs at once: submissions graded on one evaluation set
    (equal labels) are grouped, and each group's pairwise counts of equal predictions and of
    faces both got right come from two matrix products, so that the full `AgreementStats` is
    computed only for pairs whose error agreement already reaches the threshold (and, for the
    report, for pairs another signal flagged)."""

    def __init__(self, submissions: Sequence[SubmissionEvidence], thresholds: SimilarityThresholds) -> None:
        self.thresholds = thresholds
        self.prints: dict[int, _PredictionPrint] = {}
        self.priors: dict[int, np.ndarray] = {}
        self.place: dict[int, tuple[int, int]] = {}  # submission -> (group, row)
        groups: dict[bytes, list[int]] = {}
        usable: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for index, submission in enumerate(submissions):
            try:
                if submission.predictions is None or submission.labels is None:
                    continue
                predictions = _as_labels(submission.predictions, "predictions")
                labels = _as_labels(submission.labels, "labels")
            except ValueError:
                continue
            if predictions.shape == labels.shape and labels.size:
                usable[index] = predictions, labels
                key = hashlib.blake2b(labels.tobytes(), digest_size=16).digest()
                groups.setdefault(key, []).append(index)
        self.candidate: list[np.ndarray] = []
        for number, members in enumerate(groups.values()):
            labels = usable[members[0]][1]
            predictions = np.stack([usable[m][0] for m in members])
            classes = int(max(predictions.max(), labels.max())) + 1
            prior = np.bincount(labels, minlength=classes) / labels.size
            for row, member in enumerate(members):
                self.place[member] = number, row
                self.prints[member] = _prediction_print(predictions[row], labels, classes)
                self.priors[member] = prior
            self.candidate.append(self._candidates(predictions, labels, classes))

    def _candidates(self, predictions: np.ndarray, labels: np.ndarray, classes: int) -> np.ndarray:
        """(S, S) whether a pair's error agreement reaches the threshold over enough faces."""
        right = (predictions == labels).astype(np.float32)  # counts are exact in float32 up to 2**24
        both_right = (right @ right.T).astype(np.float64)
        same = np.zeros_like(both_right)
        for k in range(classes):
            said = (predictions == k).astype(np.float32)
            same += said @ said.T
        either_wrong = labels.size - both_right
        with np.errstate(divide="ignore", invalid="ignore"):
            agreement = (same - both_right) / either_wrong
        return (either_wrong >= self.thresholds.min_errors) & (agreement >= self.thresholds.error_agreement)

    def pair(self, i: int, j: int) -> _ScreenedPair | None:
        """None when submissions i and j have no predictions on one evaluation set."""
        if i not in self.place or j not in self.place or self.place[i][0] != self.place[j][0]:
            return None
        group, row = self.place[i]
        return _ScreenedPair(self, i, j, candidate=bool(self.candidate[group][row, self.place[j][1]]))


@dataclass(frozen=True)
class _ScreenedPair:
    screen: _PredictionScreen
    i: int
    j: int
    candidate: bool  # the error agreement reaches the threshold over enough faces

    def agreement(self) -> AgreementStats:
        return _agreement(self.screen.prints[self.i], self.screen.prints[self.j], self.screen.priors[self.i])


def _compare(a: SubmissionEvidence, b: SubmissionEvidence,
             screened: _ScreenedPair | None,
             thresholds: SimilarityThresholds, templates: set[str]) -> SimilarPair | None:
    signals = []
    weights = None
    identical = False
    if a.weights is not None and b.weights is not None:
        identical = a.weights.digest == b.weights.digest
        weights = _weights_score(a.weights, b.weights, floor=thresholds.weights)
        if weights is not None:
            signals.append("weights")
    source_identical = None if a.source is None or b.source is None else a.source == b.source
    if thresholds.source and source_identical and a.source not in templates:
        signals.append("source")
    agreement = None
    if screened is not None and screened.candidate:
        agreement = screened.agreement()
        if (agreement.excess >= thresholds.prediction_excess and agreement.either_wrong >= thresholds.min_errors
                and agreement.error_agreement >= thresholds.error_agreement):
            signals.append("predictions")
    if not signals:
        return None
    if weights is None and a.weights is not None and b.weights is not None:
        weights = weights_similarity(a.weights, b.weights)
    if agreement is None and screened is not None:
        agreement = screened.agreement()
    ratio = None if a.source is None or b.source is None else source_similarity(a.source, b.source)
    return SimilarPair(
        student_a=a.student_id, student_b=b.student_id, signals=tuple(signals),
        weights_similarity=weights, weights_identical=identical,
        source_identical=source_identical, source_similarity=ratio, agreement=agreement,
        reason=_reason(signals, weights, identical, a, b, agreement, ratio), folder_a=a.folder, folder_b=b.folder,
    )


def _reason(signals: list[str], weights: float | None, identical: bool, a: SubmissionEvidence,
            b: SubmissionEvidence, agreement: AgreementStats | None, ratio: float | None) -> str:
    parts = []
    if "weights" in signals:
        parts.append("identical weights" if identical
                     else f"weights correlate {_correlation(weights)} after renaming (matched by shape, names ignored)")
    if "source" in signals:
        name = a.source_name if a.source_name == b.source_name and a.source_name else "model source"
        parts.append(f"same {name} after normalization (comments, docstrings and names ignored)")
    if "predictions" in signals:
        assert agreement is not None
        parts.append(f"predictions agree on {agreement.error_agreement:.0%} of the {agreement.either_wrong} faces "
                     f"either got wrong, where {agreement.expected_error_agreement:.0%} is expected "
                     f"(on all faces {agreement.observed:.1%} vs {agreement.expected:.1%}, z {agreement.excess:.0f})")
    if "weights" not in signals and weights is not None and weights >= 0.5:
        parts.append(f"weights correlate {_correlation(weights)}")
    if "source" not in signals and ratio is not None and ratio >= 0.9:
        parts.append(f"sources {ratio:.0%} alike after normalization")
    return "; ".join(parts)


def _correlation(value: float) -> str:
    """0.981, or 0.999997 for a near copy: cut, never rounded up to 1."""
    if value >= 1.0:
        return "1"
    digits = 3 if value < 0.999 else 6
    return f"{math.floor(value * 10**digits) / 10**digits:.{digits}f}"


CSV_COLUMNS = ("student_a", "student_b", "signals", "weights_similarity", "source_identical",
               "prediction_excess", "error_agreement", "reason")


def write_similarity_csv(pairs: Sequence[SimilarPair], path: str | Path) -> None:
    """similarity.csv: one row a flagged pair (CSV_COLUMNS), written in one step
    (`grader.atomic.atomic_write_text`). signals are joined with '+'; a value the pair lacks
    (no weights, source or predictions for one of the two) is left empty; source_identical is
    true or false. The text cells (the student ids, the reason, which names the student's source
    file) go through `grader.escape.csv_cell`: a spreadsheet opening this file must not evaluate
    a student's text as a formula."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for pair in pairs:
        writer.writerow([
            csv_cell(pair.student_a), csv_cell(pair.student_b), "+".join(pair.signals),
            "" if pair.weights_similarity is None else f"{pair.weights_similarity:.4f}",
            "" if pair.source_identical is None else str(pair.source_identical).lower(),
            "" if pair.prediction_excess is None else f"{pair.prediction_excess:.1f}",
            "" if pair.error_agreement is None or math.isnan(pair.error_agreement) else f"{pair.error_agreement:.3f}",
            csv_cell(pair.reason),
        ])
    atomic_write_text(path, buffer.getvalue())


# --- reading a submission -------------------------------------------------------------------


def gather_evidence(folder: str | Path, predictions: np.ndarray | None = None, labels: np.ndarray | None = None,
                    *, student_id: str | None = None, fingerprint: WeightsFingerprint | None = None,
                    fingerprint_file: str | Path | None = None, spec: SubmissionSpec | None = None) -> SubmissionEvidence:
    """The evidence of one submission: its submission.yaml (`spec` when the caller has read it, else
    read bounded through the folder's scanned tree, grader.submission.folder; for the id and the
    source's name), its normalized model source (model.source, else a model.py kept beside TorchScript,
    read as at most MAX_SOURCE_BYTES of text, `read_source`), the weights fingerprint the sandbox
    computed (`fingerprint`, or read from `fingerprint_file`, the arrays/weights_fingerprint.npz the
    batch wrote; grader.fingerprint.read_fingerprint validates it), and the predictions.

    No weights file is opened here: without a fingerprint there is no weights evidence. A file
    that is missing or cannot be read leaves its field None with a note; this never raises for a
    student's broken files. The student id is `student_id`, else the spec's, else the folder's name."""
    folder = Path(folder)
    notes: list[str] = []
    if spec is None:
        try:
            spec = SubmissionFolder.read(folder).spec()
        except Exception as error:  # noqa: BLE001  (a missing, invalid or hostile submission.yaml or tree)
            notes.append(f"{SPEC_FILE}: {_first_line(error)}")
    if fingerprint is None:
        fingerprint = _read_fingerprint_file(fingerprint_file, notes)
    source_name = spec.model.source if spec is not None and spec.model.source else "model.py"
    source = _source_evidence(folder, source_name, notes)
    pred, lab = _prediction_evidence(predictions, labels, notes)
    return SubmissionEvidence(
        student_id=student_id or (spec.student_id if spec is not None else folder.name), folder=folder,
        weights=fingerprint, source=source, predictions=pred, labels=lab,
        source_name=source_name if source is not None else None, notes=tuple(notes),
    )


def _read_fingerprint_file(path: str | Path | None, notes: list[str]) -> WeightsFingerprint | None:
    if path is None:
        notes.append("weights: no fingerprint (the model was not loaded)")
        return None
    try:
        return read_fingerprint(path)
    except FingerprintError as error:
        notes.append(f"weights: {_first_line(error)}")
    except Exception as error:  # noqa: BLE001  (MemoryError, ...: a broken file is less evidence)
        notes.append(f"weights: {Path(path).name}: {_first_line(error)}")
    return None


def _source_evidence(folder: Path, source_name: str, notes: list[str]) -> str | None:
    """The normalized source, or None with a note."""
    try:
        text = read_source(folder, source_name)
    except FileNotFoundError:
        notes.append(f"source: no {source_name}")
        return None
    except Exception as error:  # noqa: BLE001  (OSError, ValueError: a broken file is less evidence)
        notes.append(f"source: {source_name}: {_first_line(error)}")
        return None
    try:
        return normalized_source(text)
    except Exception as error:  # noqa: BLE001  (RecursionError, ...)
        notes.append(f"source: {source_name}: {_first_line(error)}")
        return None


def read_source(folder: str | Path, name: str, limit: int = MAX_SOURCE_BYTES) -> str:
    """The text of `folder/name`, read as at most limit + 1 bytes (never its size first, then all
    of it: the file is the student's and can grow, or be a pipe that never ends). The file must be
    a regular file inside the folder, reached without a symbolic link in its last component or one
    that leads outside; it is opened non-blocking, so a FIFO cannot stall the grader. Undecodable
    bytes become U+FFFD. Raises FileNotFoundError when it is missing, ValueError when it is not a
    regular file inside the folder or larger than `limit`, OSError when it cannot be read."""
    root = Path(folder).resolve()
    path = root / name
    if not Path(os.path.realpath(path.parent)).is_relative_to(root):
        raise ValueError("its folder lies outside the submission")
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as error:
        if isinstance(error, FileNotFoundError):
            raise
        raise ValueError("not a regular file" if os.path.islink(path) else _first_line(error)) from None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise ValueError("not a regular file")
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"larger than {limit // 2**20} MB" if limit >= 2**20 else f"larger than {limit} bytes")
    return data.decode("utf-8", errors="replace")


def _prediction_evidence(predictions: np.ndarray | None, labels: np.ndarray | None,
                         notes: list[str]) -> tuple[np.ndarray | None, np.ndarray | None]:
    if predictions is None or labels is None:
        return None, None
    try:
        pred, lab = _as_labels(predictions, "predictions"), _as_labels(labels, "labels")
        if pred.shape != lab.shape:
            raise ValueError(f"{pred.shape[0]} predictions for {lab.shape[0]} labels")
    except ValueError as error:
        notes.append(f"predictions: {error}")
        return None, None
    return pred, lab


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]
