"""A small CNN for tiny images (scikit-learn digits 8x8, MNIST-size 28x28)."""

from __future__ import annotations

from torch import nn


class SimpleCNN(nn.Module):
    """Conv(3x3) x 3 with one depthwise-separable pair and a linear classifier."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1, width_mult: float = 1.0) -> None:
        super().__init__()
        c1, c2, c3 = (max(8, int(c * width_mult)) for c in (16, 32, 64))
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c1, 3, 1, 1, bias=False), nn.BatchNorm2d(c1), nn.ReLU(inplace=True),
            nn.Conv2d(c1, c2, 3, 2, 1, bias=False), nn.BatchNorm2d(c2), nn.ReLU(inplace=True),
            nn.Conv2d(c2, c2, 3, 1, 1, groups=c2, bias=False), nn.BatchNorm2d(c2), nn.ReLU(inplace=True),
            nn.Conv2d(c2, c3, 1, 1, 0, bias=False), nn.BatchNorm2d(c3), nn.ReLU(inplace=True),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c3, num_classes)

    def forward(self, x):
        return self.classifier(self.pool(self.features(x)).flatten(1))
