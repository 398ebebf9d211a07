"""What the trusted side reads of a submission folder: its scanned tree, the tree's hash, and three
small text files, each through the scanned tree (no link out of the folder, no FIFO) and each
under a size cap, so that a 20 MB YAML comment, a report.md linked to the TA's labels or a FIFO
named submission.yaml cost nothing and leak nothing. Student code and weights are never read
here: they go to the sandbox as a snapshot of the same tree (grader.sandbox.isolation).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from grader.profile import Limits
from grader.submission.answers import ANSWERS_FILE, answers_from
from grader.submission.errors import SubmissionError
from grader.submission.spec import SPEC_FILE, SubmissionSpec
from grader.submission.tree import DEFAULT_BOUNDS, Manifest, TreeBounds, scan_tree
from grader.submission.tree_files import read_file
from grader.submission.tree_hash import tree_sha256
from grader.yamlfile import parse_yaml_model

SPEC_MAX_BYTES = 64 * 1024
"""submission.yaml: a dozen fields fit in a few hundred bytes; 64 KiB leaves room for comments."""
ANSWERS_MAX_BYTES = 512 * 1024
"""report.md: four answers of at most 6,000 characters each are about 100 KiB of CJK text."""


def tree_bounds(limits: Limits) -> TreeBounds:
    """The bounds a profile's limits set on reading, hashing and snapshotting a submission folder."""
    return TreeBounds(max_bytes=limits.submission_mb << 20, max_entries=limits.submission_entries,
                      max_depth=limits.submission_depth)


@dataclass(frozen=True)
class SubmissionFolder:
    """One submission folder as scanned: where it is and its tree; `sha256` hashes the tree's bytes
    when first asked for (reading the spec needs no pass over the weights)."""

    path: Path
    manifest: Manifest

    @classmethod
    def read(cls, folder: Path, bounds: TreeBounds = DEFAULT_BOUNDS, exclude: Iterable[Path] = ()) -> SubmissionFolder:
        """Scan `folder` (SubmissionError "snapshot" for a link out, a loop, a special file or a
        bound passed; `exclude` leaves out e.g. `grader check`'s output inside the folder)."""
        return cls(path=Path(folder), manifest=scan_tree(Path(folder), bounds, exclude))

    @functools.cached_property
    def sha256(self) -> str:
        """The tree's hash (grader.submission.tree_hash.tree_sha256): SubmissionError "snapshot" when a
        file changed since the scan."""
        return tree_sha256(self.manifest)

    def spec(self) -> SubmissionSpec:
        """submission.yaml, validated; SubmissionError("spec") when it is missing or too large,
        ConfigError naming each bad field and its line."""
        data = self._text(SPEC_FILE, SPEC_MAX_BYTES, "spec")
        if data is None:
            raise SubmissionError("spec", f"no {SPEC_FILE} in the submission folder: add one (see the README for "
                                          "its fields)")
        return parse_yaml_model(data, SPEC_FILE, SubmissionSpec)

    def answers(self) -> dict[str, str]:
        """report.md's answer per question id; {} without a report.md. SubmissionError("answers")
        when it is larger than ANSWERS_MAX_BYTES."""
        data = self._text(ANSWERS_FILE, ANSWERS_MAX_BYTES, "answers")
        return {} if data is None else answers_from(data)

    def _text(self, name: str, limit: int, stage: str) -> bytes | None:
        try:
            return read_file(self.manifest, name, limit)
        except SubmissionError as error:
            raise SubmissionError(stage, error.message) from None
