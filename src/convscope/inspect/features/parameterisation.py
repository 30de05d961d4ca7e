"""The images feature visualization optimises, held as parameters that make the optimisation well behaved
(Olah, Mordvintsev & Schubert 2017, "Feature Visualization", Distill, section "Preconditioning and
Parameterization").

* ``pixels``: one free number per pixel and channel.
* ``fourier``: the image's 2-D Fourier coefficients, each scaled by 1 / frequency. Natural images have about that
  spectrum, so a gradient step moves all frequencies about equally far in image terms instead of favouring the
  high ones, which is what fills pixel-space visualizations with high-frequency noise.

Either way the numbers become an image through, for three channels, colour decorrelation (the parameters are
independent "colour components" mixed by the square root of ImageNet's colour covariance, so a step changes
luminance and chroma about equally), and then a sigmoid, which keeps every pixel inside [0, 1].
"""

from __future__ import annotations

from typing import Literal

import torch

Parameterisation = Literal["pixels", "fourier"]
PARAMETERISATIONS = ("pixels", "fourier")

# The square root of ImageNet's RGB colour covariance (its eigenvectors scaled by the square roots of their
# eigenvalues), as measured for Lucid (Olah et al. 2017); rows are R, G, B, columns the three components. Divided
# by its largest column norm below, so no component is amplified.
IMAGENET_COLOUR_SQRT = torch.tensor([[0.26, 0.09, 0.02],
                                     [0.27, 0.00, -0.05],
                                     [0.27, -0.09, 0.03]])
COLOUR_MIX = IMAGENET_COLOUR_SQRT / IMAGENET_COLOUR_SQRT.norm(dim=0).max()

INITIAL_SPREAD = 0.01  # standard deviation of the starting parameters: a near-grey image, barely noisy
# Lucid's constant: at the same parameter spread the 1/f-scaled spectrum makes pixel values 6-8 times the pixel
# parameterisation's (standard deviation 0.06 at 28 px, 0.08 at 224 px, before the sigmoid); divided by 4 the two
# start at about the same contrast and move about as fast at the same learning rate.
FOURIER_DIVISOR = 4.0


class ImageParameters(torch.nn.Module):
    """``forward()`` -> (B, C, H, W) images in [0, 1]; ``parameters()`` what the optimiser changes."""

    def __init__(self, batch: int, channels: int, height: int, width: int, parameterisation: Parameterisation,
                 decorrelate: bool, generator: torch.Generator):
        super().__init__()
        if parameterisation not in PARAMETERISATIONS:
            raise ValueError(f"unknown parameterisation {parameterisation!r}: use {' or '.join(PARAMETERISATIONS)}")
        self.size = (height, width)
        self.fourier = parameterisation == "fourier"
        self.decorrelate = decorrelate and channels == 3
        if self.fourier:
            # rfft2 keeps width // 2 + 1 frequencies along the last axis; real and imaginary parts as the last dim
            shape = (batch, channels, height, width // 2 + 1, 2)
            self.register_buffer("frequency_scale", _frequency_scale(height, width))
        else:
            shape = (batch, channels, height, width)
        self.values = torch.nn.Parameter(torch.randn(shape, generator=generator) * INITIAL_SPREAD)

    def forward(self) -> torch.Tensor:
        if self.fourier:
            spectrum = torch.view_as_complex(self.values) * self.frequency_scale  # (B, C, H, W // 2 + 1)
            image = torch.fft.irfft2(spectrum, s=self.size, norm="ortho") / FOURIER_DIVISOR  # (B, C, H, W)
        else:
            image = self.values
        if self.decorrelate:
            image = torch.einsum("rc,bchw->brhw", COLOUR_MIX.to(image), image)
        return torch.sigmoid(image)


def _frequency_scale(height: int, width: int) -> torch.Tensor:
    """(H, W // 2 + 1): 1 / |frequency| in cycles per pixel, the constant term (and anything slower than one
    cycle over the image) held at the image's size, so every coefficient's scale is finite."""
    rows = torch.fft.fftfreq(height)[:, None]
    cols = torch.fft.rfftfreq(width)[None, :]
    frequency = torch.sqrt(rows**2 + cols**2)
    return 1.0 / frequency.clamp(min=1.0 / max(height, width))
