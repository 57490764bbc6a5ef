"""The network builder of mlp.yaml: an MLP over tabular features.

raynas calls ``build(arch, num_classes, input_shape)`` with ``arch`` the chosen value of
each decision of mlp.yaml (``{"layers": 2, "units": 64, ...}``) and ``input_shape`` the
shape of one example (here ``(features,)``); it returns any ``torch.nn.Module`` mapping a
batch to ``(batch, num_classes)`` logits.
"""

from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh}


def build(arch, num_classes, input_shape):
    (features,) = input_shape
    layers, width = [], features
    for _ in range(arch["layers"]):
        layers += [nn.Linear(width, arch["units"]), ACTIVATIONS[arch["activation"]]()]
        if arch["dropout"] > 0:
            layers.append(nn.Dropout(arch["dropout"]))
        width = arch["units"]
    layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)
