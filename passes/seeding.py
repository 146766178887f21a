"""Independent random streams: one generator per (seed, purpose), so no two passes draw correlated numbers.

Seeding two generators with the same integer makes their streams identical; a mask drawn from `rand` and an
initialization drawn from `randn` would then be correlated (kept positions get larger weights).
"""

from __future__ import annotations

import hashlib

import torch


def generator(seed: int, *purpose: str | int) -> torch.Generator:
    """A torch Generator seeded from `seed` and a purpose key (pass name, layer index, …)."""
    key = ":".join(str(part) for part in (seed, *purpose)).encode()
    return torch.Generator().manual_seed(int.from_bytes(hashlib.sha256(key).digest()[:8], "little") >> 1)
