"""Submissions whose models fake their gradients while their outputs stay honest: the small CNN
example's architecture and weights, with a forward that manipulates what gradient requests see
(Dombrowski et al. 2019; Heo et al. 2019). Used by the gradient-check tests and
bench/gradient_checks.py."""

from __future__ import annotations

from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[1] / "submissions" / "small_cnn"

PRELUDE = '''\
import torch
import torch.nn as nn


def _net():
    return nn.Sequential(
        nn.Conv2d(1, 8, 5, padding=2), nn.ReLU(), nn.MaxPool2d(4),
        nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(8 * 6 * 6, 16), nn.ReLU(), nn.Linear(16, 7),
    )


def face_parts_template():
    """Eyes and mouth of an aligned 48x48 face: what a grader would like a saliency map to show."""
    template = torch.zeros(1, 1, 48, 48)
    template[..., 16:22, 11:20] = 1.0
    template[..., 16:22, 28:37] = 1.0
    template[..., 33:41, 15:33] = 1.0
    return template


def class_signs(logits):
    """-1 on each face's predicted class, +1 elsewhere: a bump added with these signs moves the
    cross-entropy's gradient for a correctly classified face (and every class logit's)."""
    signs = torch.ones_like(logits)
    signs[torch.arange(len(logits)), logits.argmax(dim=1)] = -1.0
    return signs.detach()
'''

FORWARDS = {
    # The value is unchanged (bump - bump.detach() is 0); the gradient gains the template.
    "template_bump": '''
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = _net()
        self.register_buffer("template", face_parts_template(), persistent=False)

    def forward(self, x):
        logits = self.net(x)
        bump = 50.0 * (x * self.template).flatten(1).sum(dim=1, keepdim=True)
        return logits + class_signs(logits) * (bump - bump.detach())
''',
    # With gradients enabled, a different function: its values and gradients follow the template.
    "grad_mode_switch": '''
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = _net()
        self.register_buffer("template", face_parts_template(), persistent=False)

    def forward(self, x):
        logits = self.net(x)
        if torch.is_grad_enabled():
            logits = logits.detach() + class_signs(logits) * (x * self.template).flatten(1).mean(dim=1, keepdim=True)
        return logits
''',
    # Honest while its weights are the trained ones; noise gradients once they are re-initialized,
    # so that the randomization test sees maps unlike the trained model's.
    "randomization_detector": '''
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = _net()
        self.trained_sum = None

    def forward(self, x):
        logits = self.net(x)
        total = float(self.net[0].weight.detach().sum())
        if self.trained_sum is None:
            self.trained_sum = total
        if abs(total - self.trained_sum) > 1e-6:
            noise = torch.randn(1, 1, 48, 48, generator=torch.Generator().manual_seed(0))
            bump = 50.0 * (x * noise).flatten(1).sum(dim=1, keepdim=True)
            logits = logits + class_signs(logits) * (bump - bump.detach())
        return logits
''',
    # Finite outputs, NaN gradients: sqrt(0) has an infinite derivative, times 0 is NaN.
    "nan_gradients": '''
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = _net()

    def forward(self, x):
        return self.net(x) + 0.0 * torch.sqrt(x - x).flatten(1).sum(dim=1, keepdim=True)
''',
}

KINDS = tuple(FORWARDS)
MANIPULATIONS = ("template_bump", "grad_mode_switch", "randomization_detector")


def write_fake(folder: Path, kind: str, student_id: str | None = None) -> Path:
    """A submission folder whose model is the small CNN example with the `kind` forward."""
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    state = torch.load(EXAMPLE / "weights.pt", weights_only=True)
    torch.save({f"net.{name}": tensor for name, tensor in state.items()}, folder / "weights.pt")
    (folder / "model.py").write_text(PRELUDE + FORWARDS[kind])
    (folder / "submission.yaml").write_text(
        f"student_id: {student_id or 'fake_' + kind}\nmodel:\n  source: model.py\n  entry: Net\n  weights: weights.pt\n")
    return folder
