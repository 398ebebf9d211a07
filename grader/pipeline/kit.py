"""The course kit: one folder (or zip) with everything a grading run's numbers depend on.

Course staff write it once (`grader kit --data public.csv --out KIT`); students pre-check with it
(`grader check . --kit KIT`) and the TA grades with it (`grader grade submissions --kit KIT --data
private.csv`). On the kit's public split a student's check then gives exactly the TA's numbers:
the same rubric, labelled faces, task settings (LIME samples, ascent steps, seeds), language and
hardware profile. The kit records the xai-grader version that made it; another version grades
with the kit's settings too, but says that its numbers may differ.

Layout (Otter's and nbgrader's "release" idea: the instructor's settings, shipped to students):

    KIT/kit.yaml        the manifest (KitManifest): versions, settings, each file with its SHA-256
    KIT/rubric.yaml     the rubric
    KIT/data/...        the public labelled split as given (a CSV with its `<stem>_masks.npz`, or
                        an image folder)
    KIT/README.txt      how a student uses it

A kit is read back only after every file's SHA-256 matches the manifest, so a kit edited by hand
(a changed rubric or data file) is refused with the file named. A zipped kit is unpacked into a
scratch folder with its names, sizes and entry count bounded, and no links.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
import zlib
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field

import grader
from grader.atomic import atomic_write_text
from grader.filehash import file_sha256
from grader.pipeline.ziparchive import ArchiveError, ZipLimits, entry_parts, unpack_zip
from grader.questions.settings import TaskSettings
from grader.yamlfile import ConfigError, load_yaml_model

KIT_MANIFEST = "kit.yaml"
KIT_RUBRIC = "rubric.yaml"
KIT_DATA = "data"
KIT_FORMAT = 1
MAX_KIT_BYTES = 4 << 30
"""A zipped kit's unpacked size at most: FER2013 as a CSV is about 290 MB."""
MAX_KIT_ENTRIES = 200_000
"""A zipped kit's entries at most: an image folder of all 35,887 FER2013 faces fits."""


class KitError(Exception):
    """A kit that cannot be made or used; the message names the file and what to do."""


class KitFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    file: str = Field(description="path inside the kit, / separated")
    sha256: str = Field("", description="the file's SHA-256; empty for an image folder")


class KitData(KitFile):
    usage: str = Field("PrivateTest", description="fer2013.csv rows graded (its Usage column)")
    rows: int = Field(0, ge=0, description="labelled faces in the split")


class KitManifest(BaseModel):
    """kit.yaml."""

    model_config = ConfigDict(extra="forbid")

    kit: int = Field(KIT_FORMAT, description="the kit layout's version")
    xai_grader: str = Field(description="the xai-grader version that made the kit")
    made: str = Field("", description="when, UTC")
    rubric: KitFile
    data: KitData
    language: str = "en"
    profile: str = "cpu"
    tasks: dict[str, int | bool] = Field(description="grader.questions.settings.TaskSettings, field by field")


@dataclass(frozen=True)
class CourseKit:
    """A kit read back and checked: the paths a grading run uses, and its settings."""

    folder: Path
    manifest: KitManifest

    @property
    def rubric(self) -> Path:
        return self.folder / self.manifest.rubric.file

    @property
    def data(self) -> Path:
        return self.folder / self.manifest.data.file

    @property
    def usage(self) -> str:
        return self.manifest.data.usage

    @property
    def tasks(self) -> TaskSettings:
        return TaskSettings(**self.manifest.tasks)  # type: ignore[arg-type]

    @property
    def version_note(self) -> str | None:
        """A line to print when this xai-grader is not the version that made the kit."""
        made_with = self.manifest.xai_grader
        if made_with == grader.__version__:
            return None
        return (f"this kit was made with xai-grader {made_with} and this is {grader.__version__}: the "
                f"settings are the kit's, but numbers can differ between versions; install "
                f"xai-grader=={made_with} to see exactly the TA's")


# --- writing -----------------------------------------------------------------------------------


def write_kit(out: Path, *, data: Path, rubric: Path, usage: str, rows: int, tasks: TaskSettings,
              language: str, profile: str) -> Path:
    """Write the kit to `out` (a folder, or a zip when `out` ends in .zip) and return it; nothing
    is left at `out` if writing fails. Refuses an `out` that exists: a kit is not updated in place,
    since students may hold the old one."""
    out = Path(out)
    if out.exists() or out.is_symlink():
        raise KitError(f"{out} already exists; remove it or choose another --out (a kit is never "
                       "overwritten: students may already have that one)")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".kit-", dir=out.parent) as scratch:
        folder = Path(scratch) / "kit"
        folder.mkdir()
        manifest = _fill(folder, data=data, rubric=rubric, usage=usage, rows=rows, tasks=tasks,
                         language=language, profile=profile)
        atomic_write_text(folder / KIT_MANIFEST, _manifest_text(manifest))
        atomic_write_text(folder / "README.txt", _readme(manifest))
        if out.suffix.lower() == ".zip":
            staged = Path(scratch) / "kit.zip"
            _zip_folder(folder, staged)
            os.replace(staged, out)
        else:
            os.replace(folder, out)
    return out


def _fill(folder: Path, *, data: Path, rubric: Path, usage: str, rows: int, tasks: TaskSettings,
          language: str, profile: str) -> KitManifest:
    shutil.copyfile(rubric, folder / KIT_RUBRIC)
    (folder / KIT_DATA).mkdir()
    data_name = f"{KIT_DATA}/{data.name}"
    if data.is_dir():
        shutil.copytree(data, folder / data_name, symlinks=False)
        data_sha = ""
    else:
        shutil.copyfile(data, folder / data_name)
        masks = data.with_name(f"{data.stem}_masks.npz")  # grader.data.course_csv's part masks
        if masks.is_file():
            shutil.copyfile(masks, folder / KIT_DATA / masks.name)
        data_sha = file_sha256(folder / data_name)
    return KitManifest(
        xai_grader=grader.__version__, made=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        rubric=KitFile(file=KIT_RUBRIC, sha256=file_sha256(folder / KIT_RUBRIC)),
        data=KitData(file=data_name, sha256=data_sha, usage=usage, rows=rows),
        language=language, profile=profile, tasks=asdict(tasks))


def _manifest_text(manifest: KitManifest) -> str:
    header = ("# A course kit for xai-grader: `grader check SUBMISSION --kit KIT` grades with exactly these\n"
              "# settings. Made by `grader kit`; do not edit (each file's SHA-256 is checked).\n")
    return header + yaml.safe_dump(manifest.model_dump(), sort_keys=False, allow_unicode=True)


def _readme(manifest: KitManifest) -> str:
    return (f"Course kit for xai-grader {manifest.xai_grader}\n\n"
            "Pre-check your submission exactly as the TA grades it (same rubric, settings and data):\n\n"
            f"    pip install xai-grader=={manifest.xai_grader}\n"
            "    grader check YOUR_FOLDER --kit THIS_KIT\n\n"
            f"The data is the public labelled split ({manifest.data.rows} faces); the TA grades on a\n"
            "private split with the same settings, so your numbers there will differ a little.\n")


def _zip_folder(folder: Path, target: Path) -> None:
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(folder).as_posix())


# --- reading -----------------------------------------------------------------------------------


def read_kit(path: Path, scratch: Path) -> CourseKit:
    """The kit at `path` (a folder, or a zip unpacked into `scratch`), its files checked against the
    manifest; KitError naming what is wrong otherwise."""
    path = Path(path)
    if path.is_file() and zipfile.is_zipfile(path):
        folder = _unpack(path, Path(scratch) / "kit")
    elif path.is_dir():
        folder = path
    else:
        raise KitError(f"{path}: not a kit (neither a folder nor a zip made by `grader kit`)")
    try:
        manifest = load_yaml_model(folder / KIT_MANIFEST, KitManifest)
    except ConfigError as error:
        raise KitError(f"{path}: not a usable kit:\n{error}") from None
    if manifest.kit != KIT_FORMAT:
        raise KitError(f"{path}: kit layout {manifest.kit}; this xai-grader reads layout {KIT_FORMAT}: "
                       f"install xai-grader=={manifest.xai_grader}")
    try:
        TaskSettings(**manifest.tasks)  # type: ignore[arg-type]
    except TypeError as error:
        raise KitError(f"{path}/{KIT_MANIFEST}: tasks: {error}; install xai-grader=={manifest.xai_grader}") from None
    for entry in (manifest.rubric, manifest.data):
        _check_file(path, folder, entry)
    return CourseKit(folder=folder, manifest=manifest)


def _check_file(kit: Path, folder: Path, entry: KitFile) -> None:
    parts = entry_parts(entry.file)  # the zip entries' rule: a plain relative path inside the kit
    if parts is None:
        raise KitError(f"{kit}/{KIT_MANIFEST}: '{entry.file}' is outside the kit")
    target = folder.joinpath(*parts)
    if not target.exists() or target.is_symlink():
        raise KitError(f"{kit}: {entry.file} is missing; get the kit again from the course")
    if entry.sha256 and (not target.is_file() or file_sha256(target) != entry.sha256):
        raise KitError(f"{kit}: {entry.file} was changed after the kit was made (its SHA-256 is not the "
                       f"one in {KIT_MANIFEST}); get the kit again from the course")


def _unpack(archive_path: Path, folder: Path) -> Path:
    """Unpack a zipped kit (grader.pipeline.ziparchive: names inside one folder, no links, bounded
    size and count); KitError naming the entry otherwise."""
    try:
        return unpack_zip(archive_path, folder, ZipLimits(MAX_KIT_ENTRIES, MAX_KIT_BYTES), "the kit")
    except ArchiveError as error:
        raise KitError(f"{archive_path}: {error}") from None
    except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError, EOFError, ValueError, zlib.error) as error:
        # A damaged zip (a bad deflate stream, a name that is not UTF-8, `a` beside `a/b`).
        raise KitError(f"{archive_path}: not a readable kit ({error}); get the kit again from the course") from None
