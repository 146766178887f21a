"""Recurrent layers (RNN, GRU, LSTM), unrolled over the sequence: one cell per time step, so the exported
graph is static. The input projection of all steps is one matmul; only the recurrent one is per step.

Shared by the three: W [dirs, gates·H, in], R [dirs, gates·H, H], B [dirs, 2·gates·H] (W's bias, then R's),
`sequence_lens` (a step at or past a batch entry's length keeps its state and outputs zeros), direction
forward / reverse / bidirectional, layout 0 ([seq, batch, …]) or 1 ([batch, seq, …]), `clip` on every gate's
pre-activation, and named activations with their alpha/beta taken in order from the attribute lists.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .registry import op

# name (case-insensitive, as onnxruntime reads it) -> (function of x, alpha, beta; default alpha, beta)
ACTIVATIONS = {
    "relu": (lambda x, a, b: torch.relu(x), None, None),
    "tanh": (lambda x, a, b: torch.tanh(x), None, None),
    "sigmoid": (lambda x, a, b: torch.sigmoid(x), None, None),
    "affine": (lambda x, a, b: a * x + b, 1.0, 0.0),
    "leakyrelu": (lambda x, a, b: F.leaky_relu(x, a), 0.01, None),
    "thresholdedrelu": (lambda x, a, b: torch.where(x > a, x, torch.zeros_like(x)), 1.0, None),
    "scaledtanh": (lambda x, a, b: a * torch.tanh(b * x), 1.0, 1.0),
    "hardsigmoid": (lambda x, a, b: torch.clamp(a * x + b, 0.0, 1.0), 0.2, 0.5),
    "elu": (lambda x, a, b: F.elu(x, a), 1.0, None),
    "softsign": (lambda x, a, b: x / (1 + torch.abs(x)), None, None),
    "softplus": (lambda x, a, b: F.softplus(x), None, None),
}


@op(since=7)
def RNN(
    X,
    W,
    R,
    B=None,
    sequence_lens=None,
    initial_h=None,
    *,
    activation_alpha=None,
    activation_beta=None,
    activations=None,
    clip=None,
    direction="forward",
    hidden_size=None,
    layout=0,
):
    def cell(x, states, r, rb, fns, d):
        (h,) = states
        return (fns[0](_clip(x + h @ r.T + rb, clip)),)

    return _unroll(
        X,
        W,
        R,
        B,
        sequence_lens,
        (initial_h,),
        cell,
        ["Tanh"],
        activations,
        activation_alpha,
        activation_beta,
        direction,
        layout,
    )


@op(since=7)
def GRU(
    X,
    W,
    R,
    B=None,
    sequence_lens=None,
    initial_h=None,
    *,
    activation_alpha=None,
    activation_beta=None,
    activations=None,
    clip=None,
    direction="forward",
    hidden_size=None,
    layout=0,
    linear_before_reset=0,
):
    def cell(x, states, r, rb, fns, d):
        (h,) = states
        f, g = fns
        size = h.shape[-1]
        xz, xr, xh = x.split(size, dim=-1)  # gate order z (update), r (reset), h (candidate)
        rz, rr, rh = r.split(size, dim=0)
        bz, br, bh = rb.split(size, dim=-1)
        z = f(_clip(xz + h @ rz.T + bz, clip))
        reset = f(_clip(xr + h @ rr.T + br, clip))
        # linear_before_reset: the reset gate scales R's product with h (as cuDNN does), not h
        recurrent = reset * (h @ rh.T + bh) if linear_before_reset else (reset * h) @ rh.T + bh
        candidate = g(_clip(xh + recurrent, clip))
        return ((1 - z) * candidate + z * h,)

    return _unroll(
        X,
        W,
        R,
        B,
        sequence_lens,
        (initial_h,),
        cell,
        ["Sigmoid", "Tanh"],
        activations,
        activation_alpha,
        activation_beta,
        direction,
        layout,
    )


@op(since=7)
def LSTM(
    X,
    W,
    R,
    B=None,
    sequence_lens=None,
    initial_h=None,
    initial_c=None,
    P=None,
    *,
    activation_alpha=None,
    activation_beta=None,
    activations=None,
    clip=None,
    direction="forward",
    hidden_size=None,
    input_forget=0,
    layout=0,
):
    def cell(x, states, r, rb, fns, d):
        h, c = states
        f, g, out = fns
        gi, go, gf, gc = (x + h @ r.T + rb).split(h.shape[-1], dim=-1)  # gate order i, o, f, c
        pi, po, pf = P[d].split(h.shape[-1]) if P is not None else (0, 0, 0)  # peepholes i, o, f
        i = f(_clip(gi + pi * c, clip))
        forget = 1 - i if input_forget else f(_clip(gf + pf * c, clip))
        c = forget * c + i * g(_clip(gc, clip))
        o = f(_clip(go + po * c, clip))  # the output gate peeks at the new cell
        return o * out(c), c

    return _unroll(
        X,
        W,
        R,
        B,
        sequence_lens,
        (initial_h, initial_c),
        cell,
        ["Sigmoid", "Tanh", "Tanh"],
        activations,
        activation_alpha,
        activation_beta,
        direction,
        layout,
    )


def _clip(x, clip):
    return x if clip is None else torch.clamp(x, -clip, clip)


def _unroll(
    X, W, R, B, sequence_lens, initial, cell, defaults, activations, alphas, betas, direction, layout
):
    """Run `cell` over the sequence in each direction; returns Y, then each final state ([dirs, batch, H])."""
    if direction not in ("forward", "reverse", "bidirectional"):
        raise NotImplementedError(f"direction {direction!r}")
    dirs = 2 if direction == "bidirectional" else 1
    if layout:  # [batch, seq, in] and states [batch, dirs, H]
        X = X.transpose(0, 1)
        initial = tuple(s.transpose(0, 1) if s is not None else None for s in initial)
    steps, batch = X.shape[0], X.shape[1]
    size = R.shape[-1]
    names = list(activations) if activations else defaults * dirs
    fns = _activations(names, alphas, betas)
    per_dir = len(names) // dirs
    zero = torch.zeros(dirs, batch, size, dtype=X.dtype)
    states0 = [s if s is not None else zero for s in initial]
    if B is not None:
        wb, rb = B.split(B.shape[-1] // 2, dim=-1)
    else:
        wb = rb = torch.zeros(dirs, W.shape[1], dtype=X.dtype)
    lengths = sequence_lens.to(torch.int64).reshape(batch, 1) if sequence_lens is not None else None
    ys, finals = [], []
    for d in range(dirs):
        projected = X @ W[d].T + wb[d]  # [seq, batch, gates·H]: every step's input term at once
        states = tuple(s[d] for s in states0)
        reverse = direction == "reverse" or d == 1
        outputs = [None] * steps
        for t in reversed(range(steps)) if reverse else range(steps):
            new = cell(projected[t], states, R[d], rb[d], fns[d * per_dir : (d + 1) * per_dir], d)
            if lengths is None:
                states, outputs[t] = new, new[0]
            else:  # past its length a batch entry holds its state (reverse: has not started yet)
                valid = t < lengths
                states = tuple(torch.where(valid, n, s) for n, s in zip(new, states, strict=True))
                outputs[t] = torch.where(valid, new[0], torch.zeros_like(new[0]))
        ys.append(torch.stack(outputs))
        finals.append(states)
    Y = torch.stack(ys, dim=1)  # [seq, dirs, batch, H]
    results = [torch.stack([f[k] for f in finals]) for k in range(len(initial))]
    if layout:
        return (Y.permute(2, 0, 1, 3), *(s.transpose(0, 1) for s in results))
    return (Y, *results)


def _activations(names, alphas, betas):
    """Each named activation with its alpha and beta: the next ones from the lists for the activations that
    take them, else the activation's defaults."""
    alphas, betas = list(alphas or ()), list(betas or ())
    fns = []
    for name in names:
        if name.lower() not in ACTIVATIONS:
            raise NotImplementedError(f"activation {name!r}")
        fn, alpha, beta = ACTIVATIONS[name.lower()]
        if alpha is not None and alphas:
            alpha = alphas.pop(0)
        if beta is not None and betas:
            beta = betas.pop(0)
        fns.append(lambda x, fn=fn, a=alpha, b=beta: fn(x, a, b))
    return fns
