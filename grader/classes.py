"""The seven FER2013 expression classes, in the dataset's label order, in each report language."""

from typing import Literal

Language = Literal["en", "zh-TW"]

CLASS_NAMES: dict[str, tuple[str, ...]] = {
    "en": ("Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral"),
    "zh-TW": ("生氣", "厭惡", "恐懼", "高興", "難過", "驚訝", "中立"),
}
NUM_CLASSES = 7
IMAGE_SIDE = 48


def center_crop_offset(side: int, tta: str = "none") -> int:
    """Where the center crop of side `side` starts (row and column) in the 48x48 face. Without test-time
    augmentation (tta "none"): (48 - side) // 2. With five_crop or ten_crop: torchvision's
    int(round((48 - side) / 2)), Python's half-to-even rounding, one pixel further for side 45, 41..."""
    far = IMAGE_SIDE - side
    return far // 2 if tta == "none" else int(round(far / 2.0))


def class_names(language: Language = "en") -> tuple[str, ...]:
    """The class names for `language`, indexed by label."""
    return CLASS_NAMES[language]


def class_index(name_or_index: str) -> int:
    """Map a class folder name ('3', 'happy', '高興') to its label, or raise ValueError."""
    text = name_or_index.strip()
    if text.isdigit() and int(text) < NUM_CLASSES:
        return int(text)
    for names in CLASS_NAMES.values():
        for index, name in enumerate(names):
            if text.lower() == name.lower():
                return index
    raise ValueError(
        f"'{name_or_index}' is not a class: use 0-6 or one of {', '.join(CLASS_NAMES['en'])}"
    )
