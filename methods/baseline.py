"""CNN regression baseline: a fully convolutional encoder-decoder regressing ab from L with L2 loss.

The non-adversarial baseline of the GAN-colorization reports: it tends to predict desaturated,
"average" colours, which is what the adversarial methods are measured against.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from bench.api import Batch, BenchError, Method, MethodOptions, hookimpl, positive
from bench.methods.networks import EncoderDecoder, adam, init_weights


@dataclass
class BaselineOptions(MethodOptions):
    lr: float = 1e-3
    width: int = 64  # channels of the first stage
    depth: int = 3  # stride-2 stages (output stride 8)

    def validate(self) -> None:
        super().validate()
        positive("width", self.width)
        positive("depth", self.depth)


class RegressionBaseline(Method):
    name = "baseline"
    description = "CNN encoder-decoder regressing ab from L with an L2 loss (non-adversarial baseline)"
    Options = BaselineOptions

    @classmethod
    def check_size(cls, size: int, options: BaselineOptions) -> None:
        if size % 2**options.depth:
            raise BenchError(f"{cls.name}: size {size} is not divisible by 2**depth={2**options.depth}")

    def __init__(self, options: BaselineOptions, context):
        super().__init__(options, context)
        self.net = init_weights(EncoderDecoder(1, 2, options.width, options.depth)).to(self.device)
        self.nets = {"G": self.net}
        self.optimizers = {"G": adam(self.net.parameters(), options.lr, betas=(0.9, 0.999))}

    def train_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        loss = F.mse_loss(self.net(batch.L), batch.ab)
        optimizer = self.optimizers["G"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return {"L2": loss.detach()}

    def colorize(self, L: torch.Tensor) -> torch.Tensor:
        return self.net(L)


@hookimpl
def register_methods(register):
    register(RegressionBaseline)
