"""Multi-process training with torch's `torchrun`: `cascc train --nproc N` writes the job to a JSON file and
launches N workers (DistributedDataParallel over gloo, so CPUs work); rank 0 writes the model and a result
file the parent reads back. Multi-node: the same command on each node with `--nnodes`, `--node-rank` and a
shared `--rdzv-endpoint HOST:PORT`.

Every rank imports the model with the same seed, so the pruned masks agree; the training loop checks this
with a broadcast from rank 0 before the first step.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..errors import CasccError, OptionError
from ..recipe import Recipe
from .plan import TrainPlan


def check_endpoint(endpoint: str) -> None:
    """HOST:PORT with a host name or IPv4/[IPv6] address and a port 1–65535, before torchrun sees it
    (torchrun answers a malformed one with a traceback)."""
    found = re.fullmatch(
        r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252}))(?::([0-9]{1,5}))?", endpoint
    )
    if not found or (found[2] is not None and not 1 <= int(found[2]) <= 65535):
        raise OptionError(
            None, f"--rdzv-endpoint {endpoint!r} is not HOST:PORT", "pass e.g. --rdzv-endpoint node0:29400"
        )


def torchrun_command(
    job: Path, *, nproc: int, nnodes: int = 1, node_rank: int = 0, rdzv_endpoint: str | None = None
) -> list[str]:
    """The `torchrun` command line (as `python -m torch.distributed.run`) for a job file."""
    command = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={nproc}"]
    if nnodes == 1 and rdzv_endpoint is None:
        command.append("--standalone")
    else:
        if rdzv_endpoint is None:
            raise OptionError(
                None, "multi-node training needs a rendezvous address", "pass --rdzv-endpoint HOST:PORT"
            )
        check_endpoint(rdzv_endpoint)
        command += [
            f"--nnodes={nnodes}",
            f"--node-rank={node_rank}",
            "--rdzv-backend=c10d",
            f"--rdzv-endpoint={rdzv_endpoint}",
            "--rdzv-id=cascc",
        ]
    return [*command, "-m", "cascc.training.distributed", str(job)]


def launch(
    model: str,
    recipe: Recipe,
    plan: TrainPlan,
    *,
    out: Path,
    seed: int = 0,
    baseline: bool = True,
    input_shapes: dict[str, tuple[int, ...]] | None = None,
    nproc: int = 2,
    nnodes: int = 1,
    node_rank: int = 0,
    rdzv_endpoint: str | None = None,
) -> dict[str, Any]:
    """Run `cascc.training.train` in `nproc` processes per node; returns rank 0's report (TrainResult JSON)."""
    with tempfile.TemporaryDirectory(prefix="cascc-train-") as tmp:
        job, result = Path(tmp) / "job.json", Path(tmp) / "result.json"
        job.write_text(
            json.dumps(
                {
                    "model": str(model),
                    "recipe": asdict(recipe),
                    "plan": asdict(plan),
                    "out": str(Path(out).resolve()),
                    "seed": seed,
                    "baseline": baseline,
                    "input_shapes": {k: list(v) for k, v in (input_shapes or {}).items()},
                    "result": str(result),
                }
            )
        )
        command = torchrun_command(
            job, nproc=nproc, nnodes=nnodes, node_rank=node_rank, rdzv_endpoint=rdzv_endpoint
        )
        code = subprocess.call(command, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        if not result.is_file():
            raise CasccError(
                None,
                f"torchrun exited with code {code} and no worker reported a result",
                "see the worker output above; rerun with --nproc 1 to debug",
            )
        report = json.loads(result.read_text())
    if not report["ok"]:
        raise CasccError(report["where"] or None, report["problem"], report["fix"])
    return report["report"]


def worker(job_path: Path) -> int:
    """One torchrun worker: join the process group, train, and (rank 0) write the result file."""
    import warnings

    import torch.distributed as dist

    from .plan import train

    warnings.filterwarnings("ignore", message=".*LeafSpec.*", category=FutureWarning)  # torch.export's noise

    job = json.loads(Path(job_path).read_text())
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    try:
        result = train(
            job["model"],
            Recipe(**job["recipe"]),
            TrainPlan(**job["plan"]),
            out=job["out"],
            seed=job["seed"],
            baseline=job["baseline"],
            input_shapes={k: tuple(v) for k, v in job["input_shapes"].items()} or None,
        )
        report = {"ok": True, "report": result.to_json() if rank == 0 else None}
    except CasccError as exc:
        report = {"ok": False, "where": str(exc.where or ""), "problem": exc.problem, "fix": exc.fix}
    if rank == 0:
        Path(job["result"]).write_text(json.dumps(report))
    dist.destroy_process_group()
    return 0 if report["ok"] else 2


if __name__ == "__main__":
    sys.exit(worker(Path(sys.argv[1])))
