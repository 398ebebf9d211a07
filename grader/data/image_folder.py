"""A folder of `<class>/*.png` faces (or .jpg, .jpeg, .bmp), <class> being 0-6 or a class name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from grader.classes import IMAGE_SIDE, class_index
from grader.data.faceset import DataFormatError, FaceSet
from grader.data.reader_words import counted

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


def read_image_folder(path: str | Path) -> FaceSet:
    """Read `<class>/*.png` (or .jpg, .jpeg, .bmp) faces, <class> being 0-6 or a class name.

    Images are converted to grayscale and must already be 48x48: resizing would change what the
    students' models see, so a wrong size is an error. Faces are ordered by class, then folder
    name, then file name; ids are positions in that order. Hidden entries and non-image files are
    skipped, since file managers and macOS leave them behind.
    """
    root = Path(path)
    if not root.exists():
        raise DataFormatError(root, "folder does not exist")
    if not root.is_dir():
        raise DataFormatError(root, "is not a folder; expected <class>/*.png images")
    entries = _image_entries(root)
    if not entries:
        raise DataFormatError(
            root,
            f"no images found; expected <class>/*{{{','.join(IMAGE_SUFFIXES)}}} "
            "with <class> 0-6 or a class name such as Happy",
        )
    images = np.stack([_read_image(file) for _, file in entries])
    labels = np.asarray([label for label, _ in entries], dtype=np.int64)
    return FaceSet(
        images=images,
        labels=labels,
        ids=np.arange(len(images), dtype=np.int64),
        source=f"{root.name}/ (image folder, {counted(len(images), 'image')})",
        meta={"layout": "image_folder", "path": str(root)},
    )


def _image_entries(root: Path) -> list[tuple[int, Path]]:
    """(label, file) for every image under root, in class, folder, file-name order."""
    entries: list[tuple[int, str, str, Path]] = []
    for child in root.iterdir():
        if child.name.startswith("."):
            continue
        if child.is_file():
            if child.suffix.lower() in IMAGE_SUFFIXES:
                raise DataFormatError(
                    child, "image is not inside a class folder; expected <class>/<name>.png"
                )
            continue  # a README or listing beside the class folders is harmless
        label = _folder_class(child)
        for file in child.iterdir():
            if _is_image_file(file):
                entries.append((label, child.name, file.name, file))
    entries.sort(key=lambda entry: entry[:3])
    return [(label, file) for label, _, _, file in entries]


def _is_image_file(file: Path) -> bool:
    # Names starting with '.' are macOS '._x.png' resource forks and the like, not faces.
    visible = not file.name.startswith(".")
    return visible and file.is_file() and file.suffix.lower() in IMAGE_SUFFIXES


def _folder_class(folder: Path) -> int:
    """The label a class folder stands for ('3', 'happy' or '高興')."""
    try:
        return class_index(folder.name)
    except ValueError as error:
        raise DataFormatError(folder, f"folder is not a class: {error}") from None


def _read_image(file: Path) -> np.ndarray:
    """One 48x48 image as grayscale uint8, row-major (rows are the image's height)."""
    try:
        with Image.open(file) as image:
            width, height = image.size
            if (width, height) != (IMAGE_SIDE, IMAGE_SIDE):
                raise DataFormatError(
                    file,
                    f"image is {width}x{height}, expected {IMAGE_SIDE}x{IMAGE_SIDE}; "
                    "resize it before grading (the grader does not resize)",
                )
            gray = image.convert("L")
    except OSError as error:  # includes PIL.UnidentifiedImageError and truncated files
        raise DataFormatError(file, f"cannot read image: {error}") from None
    return np.asarray(gray, dtype=np.uint8)


__all__ = ["IMAGE_SUFFIXES", "read_image_folder"]
