"""The network builder of space.yaml: a 1-D CNN for sequences such as MNIST-1D's.

raynas calls ``build(arch, num_classes, input_shape)`` with ``arch`` the chosen value of
each decision of space.yaml (``{"width_1": 16, "kernel_1": 5, ..., "head": "gap"}``) and
``input_shape`` the shape of one example, ``(channels, length)``; it returns any
``torch.nn.Module`` mapping a batch to ``(batch, num_classes)`` logits. Your own
builder has the same signature: name it in your space file as
``builder: mypkg.models:build``.
"""

from torch import nn


class ConvBlock(nn.Module):
    """Conv-BN-ReLU, with an optional skip connection (1x1 conv where widths differ)."""

    def __init__(self, c_in, c_out, kernel, residual):
        super().__init__()
        self.body = nn.Sequential(nn.Conv1d(c_in, c_out, kernel, padding=kernel // 2, bias=False),
                                  nn.BatchNorm1d(c_out), nn.ReLU())
        self.skip = None
        if residual:
            self.skip = nn.Identity() if c_in == c_out else nn.Conv1d(c_in, c_out, 1, bias=False)

    def forward(self, x):
        out = self.body(x)
        return out if self.skip is None else out + self.skip(x)


def build(arch, num_classes, input_shape):
    if len(input_shape) != 2:
        raise ValueError(f"the cnn1d space builds 1-D CNNs for sequences shaped (channels, "
                         f"length); the data has examples of shape {tuple(input_shape)}")
    channels, length = input_shape
    layers, width = [], channels
    for stage in (1, 2, 3):
        for _ in range(arch["blocks"]):
            layers.append(ConvBlock(width, arch[f"width_{stage}"], arch[f"kernel_{stage}"],
                                    arch["residual"]))
            width = arch[f"width_{stage}"]
        if stage < 3 and arch["pool"] != "none":
            layers.append(nn.MaxPool1d(2) if arch["pool"] == "max" else nn.AvgPool1d(2))
            length //= 2
    if arch["head"] == "gap":
        layers += [nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(width, num_classes)]
    else:
        layers += [nn.Flatten(), nn.Linear(width * length, num_classes)]
    return nn.Sequential(*layers)
