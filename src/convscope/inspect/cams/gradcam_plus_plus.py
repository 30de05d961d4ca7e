from __future__ import annotations

import torch

from .base import CAM


class GradCAMPlusPlus(CAM):
    """Grad-CAM++ (Chattopadhyay et al., WACV 2018, https://arxiv.org/abs/1710.11063), eq. 19 with the
    exponential-output simplification (their eq. 20), where higher derivatives are powers of the first:

        alpha_k[i, j] = G^2 / (2 G^2 + sum_ab A_k[a, b] G^3)        (0 where G = 0)
        w_k = sum_ij alpha_k[i, j] ReLU(G_k[i, j])
    """

    name, title = "gradcam++", "Grad-CAM++"
    paper = "https://arxiv.org/abs/1710.11063"

    def weights(self, activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
        g2, g3 = gradients.pow(2), gradients.pow(3)
        sum_a = activations.sum(dim=(2, 3), keepdim=True)
        denominator = 2 * g2 + sum_a * g3
        safe = torch.where(denominator != 0, denominator, torch.ones_like(denominator))
        alpha = torch.where(gradients != 0, g2 / safe, torch.zeros_like(g2))
        return (alpha * gradients.clamp(min=0)).sum(dim=(2, 3))


