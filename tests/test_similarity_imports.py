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
from grader.similarity.source import normalized_source
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


MODEL_SOURCE = """import torch.nn as tnn
class Net(tnn.Module):
    def forward(self, x):
        return tnn.functional.relu(x.flatten(1))
"""


def test_normalizing_a_model_source_imports_no_torch(tmp_path):
    """The grading process compares sources at the end of a run; it never runs a model."""
    (tmp_path / "model.py").write_text(MODEL_SOURCE)
    check = ("import sys\n"
             "from grader.similarity.source import normalized_source\n"
             f"print(normalized_source(open({str(tmp_path / 'model.py')!r}).read()))\n"
             "print('loaded:', *sorted(name for name in sys.modules if name.split('.')[0] == 'torch'))\n")
    done = subprocess.run([sys.executable, "-c", check], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    *normalized, loaded = done.stdout.splitlines()
    assert loaded == "loaded:"
    text = "\n".join(normalized)
    assert text == normalized_source(MODEL_SOURCE)  # as in this process, which has torch loaded
    assert "class v0(nn.Module):" in text and "return nn.functional.relu(a1.flatten(1))" in text  # torch's names kept


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
