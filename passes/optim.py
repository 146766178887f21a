"""Optimizer wrappers for sparse training: HAM, Hyperbolic Aware Minimization (Jacobs & Burkholz, ICLR 2026)."""

from __future__ import annotations

import torch


class HAM(torch.optim.Optimizer):
    """After each step of the base optimizer, every weight with ≥ 2 dimensions is multiplied by
    exp(clamp(lr·(−α·sign(w)⊙∇f(w) − β), −5, 5)) (docs/methods.md §4; α = 200, β = 1e-3 by default). The update is
    multiplicative, so a zero weight stays exactly zero and masks are preserved."""

    def __init__(self, base: torch.optim.Optimizer, *, alpha: float = 200.0, beta: float = 1e-3):
        # Share the base optimizer's groups and state, so LR schedulers and checkpoints see one optimizer.
        self.base = base
        self.alpha = alpha
        self.beta = beta
        self.defaults = base.defaults
        self.param_groups = base.param_groups
        self.state = base.state
        self._optimizer_step_pre_hooks = {}
        self._optimizer_step_post_hooks = {}

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.base.zero_grad(set_to_none=set_to_none)

    @torch.no_grad()
    def step(self, closure=None):
        loss = self.base.step(closure)
        for group in self.param_groups:
            for weight in group["params"]:
                if weight.grad is None or weight.dim() < 2:
                    continue
                exponent = group["lr"] * (-self.alpha * torch.sign(weight) * weight.grad - self.beta)
                weight.mul_(torch.exp(exponent.clamp(-5.0, 5.0)))
        return loss
