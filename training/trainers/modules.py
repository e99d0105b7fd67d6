"""The torch modules of the built-in trainers, rebuilt from a model card's `architecture` alone."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn


class MLP(nn.Module):
    """Linear layers with ReLU and dropout between them; no hidden layers is a linear model."""

    def __init__(self, input_size: int, hidden_layers: list[int], output_size: int, dropout: float = 0.0):
        super().__init__()
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        width = input_size
        for number, hidden in enumerate(hidden_layers, start=1):
            layers[f"hidden{number}"] = nn.Linear(width, hidden)
            layers[f"relu{number}"] = nn.ReLU()
            if dropout > 0:
                layers[f"dropout{number}"] = nn.Dropout(dropout)
            width = hidden
        layers["output"] = nn.Linear(width, output_size)
        self.net = nn.Sequential(layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class SmallCNN(nn.Module):
    """Conv blocks (3x3 conv, batch norm, ReLU, 2x2 max pool), global average, dropout, linear."""

    def __init__(self, in_channels: int, channels: list[int], class_count: int, dropout: float = 0.0):
        super().__init__()
        blocks: OrderedDict[str, nn.Module] = OrderedDict()
        width = in_channels
        for number, out_channels in enumerate(channels, start=1):
            blocks[f"block{number}"] = nn.Sequential(
                OrderedDict(
                    conv=nn.Conv2d(width, out_channels, kernel_size=3, padding=1, bias=False),
                    norm=nn.BatchNorm2d(out_channels),
                    relu=nn.ReLU(),
                    pool=nn.MaxPool2d(2),
                )
            )
            width = out_channels
        self.features = nn.Sequential(blocks)
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(width, class_count)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # A mean over the spatial dims, not AdaptiveAvgPool2d: its CUDA backward is not deterministic.
        x = self.features(x).mean(dim=(2, 3))
        return self.output(self.dropout(x))


class ScaledOutput(nn.Module):
    """Map a regression network's standardized output back to target units: y = out * std + mean."""

    def __init__(self, network: nn.Module, mean: float, std: float):
        super().__init__()
        self.network = network
        self.register_buffer("mean", torch.tensor(float(mean)))
        self.register_buffer("std", torch.tensor(float(std)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x).squeeze(-1) * self.std + self.mean


def build_module(architecture: dict) -> nn.Module:
    kind = architecture["kind"]
    if kind == "mlp":
        return MLP(
            architecture["input_size"],
            list(architecture["hidden_layers"]),
            architecture["output_size"],
            architecture.get("dropout", 0.0),
        )
    if kind == "cnn":
        return SmallCNN(
            architecture["in_channels"],
            list(architecture["channels"]),
            architecture["output_size"],
            architecture.get("dropout", 0.0),
        )
    raise ValueError(f"unknown architecture {kind!r}")


def layer_groups(module: nn.Module) -> tuple[list[str], list[nn.Parameter], list[int]]:
    """Return (layer names, parameters, the layer index of each parameter) for per-layer gradient norms."""
    names: list[str] = []
    parameters: list[nn.Parameter] = []
    owners: list[int] = []
    for name, parameter in module.named_parameters():
        if not parameter.requires_grad:
            continue
        layer = name.rsplit(".", 1)[0]
        if not names or names[-1] != layer:
            names.append(layer)
        parameters.append(parameter)
        owners.append(len(names) - 1)
    return names, parameters, owners
