"""A tiny plugin for the weights tests: one small model whose official checkpoint uses other key names."""

from __future__ import annotations

from zoo import hookimpl


@hookimpl
def zoo_builders() -> dict[str, str]:
    return {"tiny": "weights_testplugin:tiny"}


@hookimpl
def zoo_convert_checkpoint(card, state_dict):
    """The 'official' checkpoint names the trunk ``backbone.``; ours has no prefix (idempotent)."""
    if card.plugin != "wtest":
        return None
    return {k.removeprefix("backbone."): v for k, v in state_dict.items()}


def tiny(*, num_classes: int = 10, **kwargs):
    from torch import nn

    class Tiny(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.num_classes = num_classes
            self.stem = nn.Conv2d(3, 8, 3, stride=2)
            self.bn = nn.BatchNorm2d(8)
            self.head = nn.Linear(8, num_classes)

        def forward(self, x):
            return self.head(self.bn(self.stem(x)).mean((2, 3)))

    return Tiny()
