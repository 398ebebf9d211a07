"""The source signal: a student's model source read as bounded text (`read_source`), parsed with
`ast` (never imported or run) and normalized (`normalized_source`), so that copies differing only
in comments, docstrings, formatting or names compare equal.

The torch names it keeps ship with the grader (grader.similarity.torch_names): neither importing
this module nor normalizing a source imports torch.
"""

from __future__ import annotations

import ast
import builtins
import difflib
import functools
import os
import re
import stat
from pathlib import Path

from grader.similarity.torch_names import shipped_torch_names

MAX_SOURCE_BYTES = 1 * 2**20
"""A model source larger than this gives no source evidence."""


@functools.lru_cache(maxsize=1)
def known_names() -> frozenset[str]:
    """Names `normalized_source` keeps unless the file binds them: Python's builtins, what torch, torch.nn,
    torch.nn.functional, nn.Module and torch.Tensor define, the parameters of torch.nn's layers
    (padding, stride, ...), and the usual aliases of those modules (torch, nn, F). The torch names
    ship with the grader (grader.similarity.torch_names): this imports no torch."""
    names = set(dir(builtins)) | {"torch", "nn", "F", "functional"} | shipped_torch_names().namespaces
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
    module_names = shipped_torch_names().module
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


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]
