"""How cascc's CPU kernels hand their tasks (tiles, channels, rows) to threads."""

from __future__ import annotations

from tvm.script import tirx as T

# Jobs per parallel kernel. TVM allocates the locals of a parallel loop's body, scalars included, from the
# workspace pool on every iteration; a job of consecutive tasks allocates them once. One thread: a 1×1 conv
# of 4,704 16-row tiles ran 2.4 ms with a job per task and 0.65 ms with 16 jobs (0.58 ms serial).
MAX_JOBS = 16


def task_jobs(count: int, parallel: bool):
    """(loop kind, jobs, tasks per job) for `count` tasks: up to MAX_JOBS parallel jobs of consecutive tasks,
    or one serial job. Task `job · per + step` exists while it is below `count`."""
    if not parallel:
        return T.serial, 1, count
    jobs = min(count, MAX_JOBS)
    return T.parallel, jobs, -(-count // jobs)
