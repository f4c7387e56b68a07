"""MobileNetV1 (Howard et al., 2017): 3x3 stem, 13 depthwise-separable blocks, classifier."""

from __future__ import annotations

from torch import nn

# (output channels, stride) of the 13 depthwise-separable blocks
V1_BLOCKS: tuple[tuple[int, int], ...] = (
    (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
    (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1),
)


def v1_channels(c: int, width_mult: float) -> int:
    """MobileNetV1's channel rounding: ``c * width_mult`` to a multiple of 8, at least 8."""
    return max(8, int(round(c * width_mult / 8)) * 8)


def conv_bn(cin: int, cout: int, kernel: int, stride: int, groups: int = 1) -> nn.Sequential:
    """Conv (no bias, padding ``kernel // 2``) + BatchNorm + ReLU: one unit of MobileNetV1."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class MobileNetV1(nn.Module):
    """MobileNetV1 with a width multiplier; ``stem_stride`` 1 suits 28x28/32x32 images."""

    def __init__(
        self,
        num_classes: int = 1000,
        in_channels: int = 3,
        width_mult: float = 1.0,
        stem_stride: int = 2,
    ) -> None:
        super().__init__()

        def ch(c: int) -> int:
            return v1_channels(c, width_mult)

        layers: list[nn.Module] = [conv_bn(in_channels, ch(32), 3, stem_stride)]
        cin = ch(32)
        for cout, stride in V1_BLOCKS:
            layers.append(conv_bn(cin, cin, 3, stride, groups=cin))  # depthwise
            layers.append(conv_bn(cin, ch(cout), 1, 1))  # pointwise
            cin = ch(cout)
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(cin, num_classes)

    def forward(self, x):
        x = self.pool(self.features(x)).flatten(1)
        return self.classifier(x)
