from __future__ import annotations

import torch

from .base import CAM


class GradCAM(CAM):
    """Grad-CAM (Selvaraju et al., ICCV 2017, https://arxiv.org/abs/1610.02391), eq. 1-2:
    w_k = mean_ij dy^c/dA_k[i, j];  map = ReLU(sum_k w_k A_k)."""

    name, title = "gradcam", "Grad-CAM"
    paper = "https://arxiv.org/abs/1610.02391"

    def weights(self, activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
        return gradients.mean(dim=(2, 3))
