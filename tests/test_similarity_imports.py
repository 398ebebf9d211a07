"""What the similarity package (grader.similarity) imports: its pair types, the CSV writer and the
dashboard that shows the pairs import no torch (`source.known_names` imports torch's namespaces
only when it runs), and none of its modules imports another module's private name."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import grader.similarity
from tests.conftest import ROOT

PACKAGE = Path(grader.similarity.__file__).parent


@pytest.mark.parametrize("module", ["grader.report.dashboard", "grader.similarity.pairs",
                                    "grader.similarity.csv_report"])
def test_importing_the_dashboard_or_the_pair_types_imports_no_torch(module):
    """In a fresh interpreter: this test process has torch loaded already."""
    check = (f"import sys, {module}\n"
             "loaded = sorted(name for name in sys.modules if name == 'torch' or name.startswith('torch.'))\n"
             "print(' '.join(loaded))\n")
    done = subprocess.run([sys.executable, "-c", check], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "", f"{module} imports {done.stdout.strip()}"


@pytest.mark.parametrize("path", sorted(PACKAGE.glob("*.py")), ids=lambda p: p.name)
def test_no_similarity_module_imports_a_private_name_of_another_module(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imported = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module != "__future__":
            imported += [f"{node.module}.{alias.name}" for alias in node.names]
    assert [name for name in imported if any(part.startswith("_") for part in name.split("."))] == []
