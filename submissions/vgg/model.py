import torch.nn as nn


def block(cin, cout):
    return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class VGGNet(nn.Module):
    """A VGG-style CNN: two 3x3 convolutions per stage, three stages, then two dense layers."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            *block(1, 32), *block(32, 32), nn.MaxPool2d(2),
            *block(32, 64), *block(64, 64), nn.MaxPool2d(2), nn.Dropout(0.1),
            *block(64, 128), *block(128, 128), nn.MaxPool2d(2), nn.Dropout(0.2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(128 * 6 * 6, 128), nn.ReLU(inplace=True), nn.Dropout(0.4), nn.Linear(128, 7),
        )

    def forward(self, x):
        return self.classifier(self.features(x))
