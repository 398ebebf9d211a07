"""Train the example submissions in submissions/ on the synthetic training split, with Lightning.

    python scripts/train_examples.py [--only vgg small_cnn ...]

Each folder's model.py is the student's source; this script trains it reproducibly (fixed seed,
deterministic algorithms, CPU) and saves the weights in the format that folder's submission.yaml
declares. It takes a few minutes on 2 CPU cores and prints each model's evaluation accuracy.

A recipe with a `shortcut` trains on the training split with that cue planted (grader.data.synth's
ShortcutCue); every model is still validated and evaluated on the clean evaluation split.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from grader.data.datamodule import FaceDataModule
from grader.data.synth import DEFAULT_EVAL_SIZE, DEFAULT_SEED, DEFAULT_TRAIN_SIZE, ShortcutCue, generate
from grader.submission.build import _import_source, instantiate
from grader.submission.module import SubmissionModule
from grader.submission.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Recipe:
    epochs: int
    lr: float
    entry: str | None = None  # for TorchScript folders, whose submission.yaml names no entry
    shortcut: ShortcutCue | None = None  # trained on faces that carry this cue (the eval split stays clean)


RECIPES: dict[str, Recipe] = {
    "vgg": Recipe(epochs=14, lr=2e-3),
    "small_cnn": Recipe(epochs=4, lr=3e-3),
    "lightning_ckpt": Recipe(epochs=10, lr=3e-3),
    "torchscript": Recipe(epochs=8, lr=1.5e-3, entry="RGBNet"),
    "residual_zh": Recipe(epochs=10, lr=3e-3),
    "broken_six_classes": Recipe(epochs=0, lr=0.0),  # broken on purpose: it never trains
    # Trained on faces where a label-coded gray square sits in both top corners (80% of them): it still
    # reads expressions on clean faces, but its explanations point at the corners too.
    "shortcut_cue": Recipe(epochs=6, lr=3e-3, shortcut=ShortcutCue(rate=0.8, size=10)),
}


class TrainingModule(SubmissionModule):
    """The grader's SubmissionModule plus what training needs: loss, augmentation, optimizer."""

    def __init__(self, net, input_spec, lr: float, epochs: int) -> None:
        super().__init__(net, input_spec)
        self.lr, self.epochs = lr, epochs

    def training_step(self, batch, batch_idx):
        pixels, labels = batch
        loss = F.cross_entropy(self(augment(pixels)), labels, label_smoothing=0.05)
        self.log("train_loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx):
        pixels, labels = batch
        self.log("val_acc", (self(pixels).argmax(1) == labels).float().mean(), prog_bar=True)

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(self.parameters(), lr=self.lr, weight_decay=1e-4)
        steps = self.trainer.estimated_stepping_batches
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=self.lr, total_steps=steps)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


class EpochLog(pl.Callback):
    """One line per epoch: progress bars do not show in logs."""

    def __init__(self, name: str) -> None:
        self.name, self.started = name, time.time()

    def on_validation_epoch_end(self, trainer, module):
        accuracy = float(trainer.callback_metrics.get("val_acc", float("nan")))
        print(f"  {self.name} epoch {trainer.current_epoch + 1}/{trainer.max_epochs}: val_acc {accuracy:.3f}, "
              f"{time.time() - self.started:.0f} s", flush=True)


def augment(pixels: torch.Tensor) -> torch.Tensor:
    """Mirror half the batch and shift it by up to 2 pixels: expressions are left-right symmetric."""
    flip = torch.rand(len(pixels), device=pixels.device) < 0.5
    pixels = torch.where(flip[:, None, None], pixels.flip(-1), pixels)
    dx, dy = (int(v) for v in torch.randint(-2, 3, (2,)))
    return torch.roll(pixels, shifts=(dy, dx), dims=(-2, -1))


def train(folder: Path, recipe: Recipe, data: FaceDataModule) -> None:
    spec = load_spec(folder)
    pl.seed_everything(DEFAULT_SEED, workers=True)
    if recipe.entry:
        net = getattr(_import_source(folder / "model.py", folder), recipe.entry)()
    else:
        net = instantiate(folder, spec)
    module = TrainingModule(net, spec.input, recipe.lr, recipe.epochs)
    trainer = pl.Trainer(max_epochs=recipe.epochs, accelerator="cpu", deterministic=True, logger=False,
                         enable_checkpointing=False, enable_model_summary=False, num_sanity_val_steps=0,
                         enable_progress_bar=False, callbacks=[EpochLog(folder.name)],
                         default_root_dir=str(ROOT / ".cache" / "train"))
    started = time.time()
    if recipe.epochs:
        trainer.fit(module, datamodule=data)
    net.eval()
    save(folder, spec, trainer, module)
    accuracy = evaluate(module, data)
    size = (folder / spec.model.weights).stat().st_size / 1e6
    params = sum(p.numel() for p in net.parameters())
    print(f"{folder.name}: accuracy {accuracy:.3f}, {params} parameters, {size:.2f} MB, "
          f"{time.time() - started:.0f} s")


def save(folder: Path, spec, trainer: pl.Trainer, module: TrainingModule) -> None:
    target = folder / spec.model.weights
    if spec.weights_format == "lightning_ckpt":
        trainer.strategy.connect(module)
        trainer.save_checkpoint(target, weights_only=True)
    elif spec.weights_format == "torchscript":
        torch.jit.script(module.net).save(str(target))
    else:
        torch.save(module.net.state_dict(), target)


@torch.no_grad()
def evaluate(module: TrainingModule, data: FaceDataModule) -> float:
    module.eval()
    labels = torch.from_numpy(data.evaluation.labels)
    if module.net(module.preprocess(torch.zeros(1, 48, 48))).shape[1] != 7:
        return float("nan")
    predictions = torch.cat([module(batch[0]).argmax(1) for batch in data.predict_dataloader()])
    return float((predictions == labels).float().mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=list(RECIPES), choices=list(RECIPES))
    args = parser.parse_args()
    torch.set_num_threads(2)
    evaluation = generate(DEFAULT_EVAL_SIZE, DEFAULT_SEED, "eval")
    data: dict[ShortcutCue | None, FaceDataModule] = {}
    for name in args.only:
        cue = RECIPES[name].shortcut
        if cue not in data:
            data[cue] = FaceDataModule(evaluation=evaluation, batch_size=64, seed=DEFAULT_SEED,
                                       train=generate(DEFAULT_TRAIN_SIZE, DEFAULT_SEED, "train", shortcut=cue))
        train(ROOT / "submissions" / name, RECIPES[name], data[cue])


if __name__ == "__main__":
    main()
