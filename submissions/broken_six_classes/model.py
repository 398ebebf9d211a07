import torch.nn as nn


class SixWayNet(nn.Module):
    """Broken on purpose: six outputs, because the student dropped a class (FER2013 has seven)."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(32 * 12 * 12, 6),
        )

    def forward(self, x):
        return self.body(x)
