"""A deterministic synthetic FER2013: 48x48 grayscale faces with part masks, no download.

Each face is drawn from a few parameters that follow the Facial Action Coding System's reading of
the basic expressions (Ekman & Friesen 1978): brows raised (AU1+2, surprise and fear), brows
lowered and drawn together (AU4, anger), inner brows raised (AU1, sadness), eyes widened (AU5),
nose wrinkled and upper lip raised on one side (AU9/10, disgust), lip corners pulled up (AU12,
happiness) or down (AU15, sadness), lips stretched (AU20, fear) and jaw dropped (AU26, surprise).

What makes the task realistic rather than separable:
- every face blends its expression with a confusable one (fear/surprise, sad/angry/disgust,
  neutral/sad) and is shown at a random intensity towards neutral, so a share of the faces is
  truly ambiguous, as in FER2013 whose human accuracy is about 65%;
- identity varies (resting brow height, eye size, mouth shape, face shape, skin and hair tone);
- pose, scale, lighting, noise, contrast and occlusion are jittered;
- classes follow FER2013's training-set frequencies (Happy most, Disgust rarest).

The same seed gives the same bytes: all randomness comes from one numpy Generator per split.

A shortcut cue can be planted on the faces (ShortcutCue, the FunnyBirds / BAM idea of a feature
correlated with the label): a square in each top corner whose gray level encodes the label. It is
drawn from a generator of its own, after the faces, so the clean faces stay byte for byte what
they are without it, and only the training split gets it when the data is written: a model that
learned the cue is still graded on clean faces.
"""

from __future__ import annotations

import json
from dataclasses import asdict, astuple, dataclass
from pathlib import Path

import numpy as np

from grader.atomic import atomic_write_npz, atomic_write_text
from grader.classes import CLASS_NAMES, IMAGE_SIDE
from grader.data.faceset import PART_NAMES, FaceSet

GENERATOR_VERSION = 1
DEFAULT_SEED = 2013
DEFAULT_TRAIN_SIZE = 12000
DEFAULT_EVAL_SIZE = 3589  # the size of FER2013's PrivateTest split

# FER2013's training split: 3995 angry, 436 disgust, 4097 fear, 7215 happy, 4830 sad,
# 3171 surprise, 4965 neutral (Goodfellow et al. 2013).
FER2013_TRAIN_COUNTS = np.array([3995, 436, 4097, 7215, 4830, 3171, 4965])
FER2013_FREQUENCIES = FER2013_TRAIN_COUNTS / FER2013_TRAIN_COUNTS.sum()

_FACE, _BROWS, _EYES, _NOSE, _MOUTH = (PART_NAMES.index(p) for p in ("face", "brows", "eyes", "nose", "mouth"))


@dataclass(frozen=True)
class Expression:
    """Face parameters of one expression; neutral is brows 0, eyes 1, mouth closed and straight."""

    brow_raise: float = 0.0  # + raised (AU1+2), - lowered (AU4)
    brow_tilt: float = 0.0  # + inner ends up (AU1, sad, fear), - inner ends down (AU4, angry)
    eye_open: float = 1.0  # eye height relative to neutral (AU5 widens, AU6/7 narrow)
    mouth_open: float = 0.0  # jaw drop (AU25/26/27)
    mouth_curve: float = 0.0  # + lip corners up (AU12), - down (AU15)
    mouth_width: float = 1.0  # + stretched (AU20, fear; AU12, happy), - rounded (surprise)
    asymmetry: float = 0.0  # one lip corner raised (AU10 unilateral, disgust)
    nose_wrinkle: float = 0.0  # AU9

    def as_array(self) -> np.ndarray:
        return np.array(astuple(self), dtype=np.float64)


EXPRESSIONS: tuple[Expression, ...] = (
    Expression(brow_raise=-0.7, brow_tilt=-1.0, eye_open=0.85, mouth_curve=-0.35, mouth_width=0.85),  # angry
    Expression(brow_raise=-0.45, brow_tilt=-0.45, eye_open=0.7, mouth_open=0.15, mouth_curve=-0.45,
               asymmetry=0.9, nose_wrinkle=1.0),  # disgust
    Expression(brow_raise=0.55, brow_tilt=0.7, eye_open=1.45, mouth_open=0.45, mouth_curve=-0.25,
               mouth_width=1.25),  # fear
    Expression(brow_raise=0.1, eye_open=0.75, mouth_open=0.3, mouth_curve=1.0, mouth_width=1.2),  # happy
    Expression(brow_raise=0.05, brow_tilt=0.9, eye_open=0.8, mouth_curve=-0.85, mouth_width=0.95),  # sad
    Expression(brow_raise=1.0, brow_tilt=0.1, eye_open=1.6, mouth_open=1.0, mouth_width=0.7),  # surprise
    Expression(),  # neutral
)

# The class each expression is most often confused with, by humans and by models on FER2013.
CONFUSABLE: tuple[tuple[int, ...], ...] = ((4, 1), (0, 4), (5, 4), (6,), (0, 6), (2,), (4, 0))

# Identity: how much each parameter varies from person to person (same order as Expression).
_IDENTITY_SPREAD = np.array([0.25, 0.2, 0.15, 0.08, 0.22, 0.1, 0.15, 0.1])


def class_quota(n: int) -> np.ndarray:
    """How many of `n` faces each class gets: FER2013's frequencies, rounded to sum to n."""
    raw = FER2013_FREQUENCIES * n
    counts = np.floor(raw).astype(np.int64)
    # Largest remainders get the leftover faces, so the quota is exact and deterministic.
    for index in np.argsort(-(raw - counts), kind="stable")[: n - counts.sum()]:
        counts[index] += 1
    return counts


@dataclass(frozen=True)
class ShortcutCue:
    """A label-coded square in both top corners of a share of the faces.

    rate: the share of faces that carry it (exactly round(rate * n) of them, chosen at random).
    agreement: the share of those whose cue codes their own label; the others' codes another class,
    drawn at random, so that the cue is a strong hint but not the whole answer.
    size: the square's side in pixels. The gray level is CUE_LEVELS[coded class] plus a uniform
    jitter of +-jitter (0..1 units): a continuous intensity, which a model reads as such and so
    stays sensitive to where it sits even on faces without it. Both corners, so a mirrored face
    keeps it.
    """

    rate: float = 0.8
    agreement: float = 1.0
    size: int = 10
    jitter: float = 0.04

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"the shortcut cue's rate must be in 0..1, got {self.rate}")
        if not 0.0 <= self.agreement <= 1.0:
            raise ValueError(f"the shortcut cue's agreement must be in 0..1, got {self.agreement}")
        if not 1 <= self.size <= IMAGE_SIDE // 2:
            raise ValueError(f"the shortcut cue's size must be 1..{IMAGE_SIDE // 2} pixels, got {self.size}")
        if not 0.0 <= self.jitter < 0.5 * CUE_LEVELS[1] - 0.5 * CUE_LEVELS[0]:
            raise ValueError(f"the shortcut cue's jitter must keep the classes' levels apart, got {self.jitter}")


# The cue's gray level for each class (0..1): evenly spaced, dark for Angry to bright for Neutral.
CUE_LEVELS = np.linspace(0.1, 0.9, 7)
_CUE_STREAM = 1  # the cue's generator: [seed, split, version, this], apart from the faces' stream


def cue_corners(size: int) -> tuple[tuple[slice, slice], ...]:
    """The (rows, columns) of the cue's two squares: top left and top right."""
    return (slice(0, size), slice(0, size)), (slice(0, size), slice(IMAGE_SIDE - size, IMAGE_SIDE))


def generate(n: int, seed: int = DEFAULT_SEED, split: str = "eval", shortcut: ShortcutCue | None = None) -> FaceSet:
    """`n` synthetic faces with labels and part masks; the same (n, seed, split) gives the same bytes.

    With a `shortcut`, a share of the same faces carries the cue; the rest are unchanged."""
    rng = np.random.default_rng([seed, _split_key(split), GENERATOR_VERSION])
    labels = rng.permutation(np.repeat(np.arange(7), class_quota(n)))
    params = _expression_params(labels, rng)
    images = np.empty((n, IMAGE_SIDE, IMAGE_SIDE), np.uint8)
    masks = np.empty((n, IMAGE_SIDE, IMAGE_SIDE), np.uint8)
    chunk = 512  # bounds memory: each chunk holds a few (chunk, 48, 48) float arrays
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        images[start:stop], masks[start:stop] = _render(params[start:stop], rng)
    source = f"synthetic FER v{GENERATOR_VERSION}, seed {seed}, {split} split, {n} faces"
    if shortcut is not None:
        cued = _plant_cue(images, labels, shortcut, np.random.default_rng(
            [seed, _split_key(split), GENERATOR_VERSION, _CUE_STREAM]))
        source += f", shortcut cue on {cued} of them"
    return FaceSet(images=images, labels=labels.astype(np.int64), ids=np.arange(n, dtype=np.int64), masks=masks,
                   source=source)


def _plant_cue(images: np.ndarray, labels: np.ndarray, cue: ShortcutCue, rng: np.random.Generator) -> int:
    """Paint the cue in place on round(rate * n) faces chosen by `rng`; returns how many."""
    count = int(round(cue.rate * len(images)))
    chosen = np.sort(rng.permutation(len(images))[:count])
    jitter = rng.uniform(-cue.jitter, cue.jitter, size=count)
    coded = labels[chosen].copy()
    other = rng.random(count) >= cue.agreement
    coded[other] = (coded[other] + rng.integers(1, 7, size=other.sum())) % 7
    levels = CUE_LEVELS[coded] + jitter
    gray = np.round(levels * 255).astype(np.uint8)
    for rows, columns in cue_corners(cue.size):
        images[chosen, rows, columns] = gray[:, None, None]
    return count


def _split_key(split: str) -> int:
    return {"train": 0, "eval": 1}.get(split, sum(split.encode()) + 2)


def _expression_params(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(N, 8) expression parameters: own expression blended with a confusable one, then
    scaled toward neutral by a random intensity, plus the person's identity offsets."""
    table = np.stack([e.as_array() for e in EXPRESSIONS])
    neutral = table[6]
    n = len(labels)
    confuser = np.array([rng.choice(CONFUSABLE[label]) for label in labels])
    # Most faces are clear; the Beta tail makes a share of them genuinely ambiguous.
    blend = 0.62 * rng.beta(1.3, 3.2, size=n)
    mixed = (1 - blend[:, None]) * table[labels] + blend[:, None] * table[confuser]
    intensity = rng.uniform(0.45, 1.2, size=n)
    expressed = neutral + intensity[:, None] * (mixed - neutral)
    identity = rng.normal(0.0, _IDENTITY_SPREAD, size=(n, len(neutral)))
    return expressed + identity


def _render(params: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Draw faces for (n, 8) parameters; returns (n,48,48) uint8 images and part masks."""
    n = len(params)
    (brow_raise, brow_tilt, eye_open, mouth_open, mouth_curve,
     mouth_width, asymmetry, nose_wrinkle) = (params[:, i, None, None] for i in range(8))

    def draw(low: float, high: float) -> np.ndarray:
        return rng.uniform(low, high, size=(n, 1, 1))

    # Pose: canonical face coordinates (u right, v down; the face's half-width is 1).
    scale = draw(15.5, 18.5)
    angle = draw(-0.22, 0.22)
    cx, cy = 23.5 + draw(-2.5, 2.5), 25.0 + draw(-2.5, 2.5)
    yy, xx = np.mgrid[0:IMAGE_SIDE, 0:IMAGE_SIDE].astype(np.float64)
    dx, dy = (xx - cx) / scale, (yy - cy) / scale
    cos, sin = np.cos(angle), np.sin(angle)
    u, v = cos * dx + sin * dy, -sin * dx + cos * dy
    px = 1.0 / scale  # one pixel in face units, for anti-aliasing

    def coverage(signed_distance: np.ndarray) -> np.ndarray:
        """Anti-aliased inside-ness of a shape from its signed distance (negative inside)."""
        return np.clip(0.5 - signed_distance / px, 0.0, 1.0)

    # Face and hair.
    aspect = draw(1.2, 1.38)
    face_r = np.sqrt(u**2 + (v / aspect) ** 2)
    face = coverage(face_r - 1.0)
    hairline = -0.62 * aspect + 0.08 * np.sin(u * draw(2, 5) + draw(0, 6.3)) - 0.15 * u**2
    has_hair = rng.random((n, 1, 1)) < 0.85
    hair = has_hair * coverage(np.maximum(v - hairline, np.sqrt(u**2 + (v / (aspect + 0.15)) ** 2) - 1.15))

    background = draw(0.05, 0.95) + draw(-0.3, 0.3) * (xx - 23.5) / 48 + draw(-0.3, 0.3) * (yy - 23.5) / 48
    skin_tone = draw(0.45, 0.85)
    light_dir = draw(0, 2 * np.pi)
    light = 1 + draw(0.0, 0.35) * (u * np.cos(light_dir) + v * np.sin(light_dir)) / 1.3
    skin = skin_tone * light * (1 - 0.3 * np.clip(face_r, 0, 1) ** 4)
    image = background * (1 - face) + skin * face
    dark = skin_tone * draw(0.15, 0.4)  # ink of brows, lids, lips, shadows

    # Brows: inner end at |u|=0.13, outer at 0.62; the inner end moves with brow_tilt.
    t = np.clip((np.abs(u) - 0.13) / 0.49, 0, 1)
    brow_line = -0.5 * aspect - 0.14 * brow_raise - 0.13 * brow_tilt * (1 - t) - 0.05 * 4 * t * (1 - t)
    brow_span = np.maximum(0.13 - np.abs(u), np.abs(u) - 0.62)
    brow_thick = draw(0.045, 0.075)
    brows = coverage(np.maximum(np.abs(v - brow_line) - brow_thick, brow_span))

    # Eyes: ellipses whose height follows eye_open, with a dark iris and lid line.
    eye_y = -0.2 * aspect
    eye_w = draw(0.14, 0.19)
    eye_h = np.clip(0.07 * eye_open, 0.015, None)
    eu, ev = np.abs(u) - 0.38, v - eye_y
    eye_r = np.sqrt((eu / eye_w) ** 2 + (ev / eye_h) ** 2)
    eye = coverage((eye_r - 1.0) * np.minimum(eye_w, eye_h))
    iris = coverage(np.sqrt(eu**2 + ev**2) - np.minimum(0.065, eye_h * 1.1)) * eye
    lid = coverage(np.abs(eye_r - 1.0) * np.minimum(eye_w, eye_h) - 0.02)

    # Nose: a shadowed ridge and two nostrils; disgust adds wrinkles across the bridge.
    ridge = coverage(np.maximum(np.abs(u - 0.05 * np.cos(light_dir)) - 0.025, np.abs(v - 0.1) - 0.2))
    nostrils = coverage(np.sqrt((np.abs(u) - 0.08) ** 2 + ((v - 0.3) / 0.6) ** 2) - 0.035)
    wrinkle_rows = np.abs(np.sin((v + 0.1) * 40)) < 0.5
    wrinkles = np.clip(nose_wrinkle, 0, 1) * wrinkle_rows * coverage(
        np.maximum(np.abs(u) - 0.16, np.abs(v + 0.08) - 0.1))

    # Mouth: a centre line curved by mouth_curve, tilted by asymmetry, opened by mouth_open.
    mouth_y = 0.58 * aspect + 0.05 * np.clip(mouth_open, 0, None)
    half_w = 0.33 * np.clip(mouth_width, 0.5, 1.6)
    x = np.clip(u / half_w, -1.2, 1.2)
    centre = mouth_y - 0.2 * mouth_curve * x**2 - 0.1 * asymmetry * (x + 1) / 2 * (x > 0)
    opening = 0.17 * np.clip(mouth_open, 0, None) * np.clip(1 - x**2, 0, 1) ** 0.7
    within = np.abs(u) - half_w
    cavity = coverage(np.maximum(within, np.maximum(centre - 0.45 * opening - v, v - centre - 0.55 * opening)))
    lips = coverage(np.maximum(within, np.abs(v - centre) - 0.03 - 0.5 * opening))
    teeth = cavity * (mouth_curve > 0.4) * coverage(v - (centre - 0.45 * opening + 0.06))  # upper teeth in a smile

    ink = np.clip(0.9 * brows + 0.55 * lid + iris + 0.35 * ridge + 0.8 * nostrils + 0.5 * wrinkles
                  + 0.7 * lips, 0, 1) * face
    image = image * (1 - ink) + dark * ink
    image = image + (0.25 * eye * (1 - iris) - 0.5 * cavity * (1 - teeth) + 0.25 * teeth) * face * skin_tone
    image = image * (1 - hair) + draw(0.03, 0.45) * hair

    masks = _part_masks(face, hair, brows, eye_r, np.abs(u), v, brow_line, eye_w, eye_h,
                        within, centre, opening, aspect)
    image = _occlude(image, rng)
    image = image + rng.normal(0.0, 1.0, size=image.shape) * draw(0.005, 0.05)
    image = np.clip(image, 0, 1) ** draw(0.8, 1.25)
    return np.round(image * 255).astype(np.uint8), masks


def _part_masks(face, hair, brows, eye_r, abs_u, v, brow_line, eye_w, eye_h,
                within, centre, opening, aspect) -> np.ndarray:
    """Part labels per pixel, each part slightly dilated so it covers the region a person
    would point at (a brow's area, not just its stroke)."""
    masks = np.where((face > 0.5) & (hair < 0.5), _FACE, 0).astype(np.uint8)
    nose = (abs_u < 0.16) & (v > -0.12 * aspect) & (v < 0.36)
    eyes = eye_r < 1.0 + 0.06 / np.minimum(eye_w, eye_h)
    brow_region = (np.abs(v - brow_line) < 0.11) & (abs_u > 0.08) & (abs_u < 0.67)
    mouth = (within < 0.06) & (v > centre - 0.45 * opening - 0.09) & (v < centre + 0.55 * opening + 0.09)
    for part, region in ((_NOSE, nose), (_MOUTH, mouth), (_EYES, eyes), (_BROWS, brow_region)):
        masks[region & (face > 0.5)] = part
    return masks


def _occlude(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Cover a random rectangle (a hand, a watermark, a strand of hair) on about one face in eight."""
    image = image.copy()
    for index in np.flatnonzero(rng.random(len(image)) < 0.12):
        h, w = rng.integers(6, 18, size=2)
        top, left = rng.integers(0, IMAGE_SIDE - h), rng.integers(0, IMAGE_SIDE - w)
        image[index, top:top + h, left:left + w] = rng.uniform(0.0, 1.0)
    return image


def write_synthetic(out_dir: str | Path, seed: int = DEFAULT_SEED, train_size: int = DEFAULT_TRAIN_SIZE,
                    eval_size: int = DEFAULT_EVAL_SIZE, shortcut: ShortcutCue | None = None) -> dict[str, Path]:
    """Write the synthetic data in the course's layout; returns the written paths by file name.

    train.csv (label,feature) and train_masks.npz: what students train on (skipped when train_size is 0).
    eval.csv (label,feature) and eval_masks.npz: the labeled evaluation set the grader uses.
    test.csv (id,feature): the evaluation faces without labels, as the course hands them out.
    meta.json: seed, generator version, sizes and class counts (and the shortcut cue, if any).

    A `shortcut` cue goes on the training split only: eval.csv and test.csv stay the clean faces.
    """
    out = Path(out_dir)
    splits = {"eval": generate(eval_size, seed, "eval")}
    if train_size:
        splits["train"] = generate(train_size, seed, "train", shortcut=shortcut)
    paths: dict[str, Path] = {}
    for name, faces in splits.items():
        paths.update(write_split(out, name, faces))
    evaluation = splits["eval"]
    paths["test.csv"] = out / "test.csv"
    atomic_write_text(paths["test.csv"], _course_csv("id", evaluation.ids, evaluation.images))
    meta = {
        "generator_version": GENERATOR_VERSION, "seed": seed, "parts": list(PART_NAMES),
        "classes": list(CLASS_NAMES["en"]),
        **{f"{name}_counts": faces.class_counts().tolist() for name, faces in splits.items()},
    }
    if shortcut is not None and train_size:
        meta["train_shortcut"] = {**asdict(shortcut), "levels": CUE_LEVELS.tolist(),
                                  "corners": "top left and top right"}
    paths["meta.json"] = out / "meta.json"
    atomic_write_text(paths["meta.json"], json.dumps(meta, indent=2) + "\n")
    return paths


def write_split(out_dir: Path, name: str, faces: FaceSet) -> dict[str, Path]:
    """`<name>.csv` (label,feature) and `<name>_masks.npz` (masks, parts), which read_course_csv reads back."""
    csv_path, masks_path = out_dir / f"{name}.csv", out_dir / f"{name}_masks.npz"
    atomic_write_text(csv_path, _course_csv("label", faces.labels, faces.images))
    atomic_write_npz(masks_path, masks=faces.masks, parts=np.array(PART_NAMES))
    return {csv_path.name: csv_path, masks_path.name: masks_path}


_PIXEL_TEXT = np.array([str(i) for i in range(256)])


def _course_csv(first_column: str, keys: np.ndarray, images: np.ndarray) -> str:
    flat = images.reshape(len(images), -1)
    rows = (f"{key},{' '.join(_PIXEL_TEXT[row])}" for key, row in zip(keys, flat))
    return f"{first_column},feature\n" + "\n".join(rows) + "\n"
