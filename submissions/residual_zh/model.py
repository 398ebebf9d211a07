import torch.nn as nn


class ResidualBlock(nn.Module):
    def __init__(self, channels, act):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.act = act

    def forward(self, x):
        y = self.act(self.bn1(self.conv1(x)))
        return self.act(x + self.bn2(self.conv2(y)))


class ResNetLite(nn.Module):
    """殘差網路：一個 ReLU 模組在各層之間共用。"""

    def __init__(self):
        super().__init__()
        self.relu = nn.ReLU()
        self.stem = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32))
        self.stage1 = ResidualBlock(32, self.relu)
        self.down = nn.Sequential(nn.Conv2d(32, 64, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(64))
        self.stage2 = ResidualBlock(64, self.relu)
        self.pool = nn.MaxPool2d(2)
        self.stage3 = ResidualBlock(64, self.relu)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 7))

    def forward(self, x):
        x = self.relu(self.stem(x))
        x = self.stage1(x)
        x = self.stage2(self.relu(self.down(x)))
        x = self.stage3(self.pool(x))
        return self.head(x)
