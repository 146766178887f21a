"""The Markdown tables of the benchmarks: each script writes its table to docs/benchmarks/<name>.md.

Every file starts with what produced it: the command, the CPU, the date and where the raw JSON lies, so a
figure in the docs always names its machine and its run. The JSON stays in benchmarks/results/.

    import report
    report.add_arguments(ap)                                   # --doc PATH, --no-doc
    report.write(args, "latency", "Latency", table, raw=json_path)
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "benchmarks"


def add_arguments(ap: argparse.ArgumentParser) -> None:
    """The options every benchmark script takes for its Markdown table."""
    ap.add_argument("--doc", type=Path, help="Markdown table file (default: docs/benchmarks/<name>.md)")
    ap.add_argument("--no-doc", action="store_true", help="do not write the Markdown table file")


def cpu() -> str:
    """This machine's CPU in words: model name, architecture, logical CPUs and the widest vector extension."""
    model, flags = "", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = (part.strip() for part in line.partition(":"))
            if key == "model name" and not model:
                model = value
            elif key in ("flags", "Features") and not flags:
                flags = set(value.split())
    except OSError:
        pass
    vector = next(
        (
            name
            for flag, name in (("avx512f", "AVX-512"), ("avx2", "AVX2"), ("sve", "SVE"), ("asimd", "NEON"))
            if flag in flags
        ),
        None,
    )
    parts = [
        model or platform.processor() or "unknown CPU",
        platform.machine(),
        f"{os.cpu_count()} logical CPUs",
    ]
    return ", ".join(parts + ([vector] if vector else []))


def command() -> str:
    """The running command as typed from the repository root."""
    script = Path(sys.argv[0]).resolve()
    return " ".join(["python", shlex.quote(relative(script)), *map(shlex.quote, sys.argv[1:])])


def relative(path: Path | str) -> str:
    """`path` relative to the repository root where it lies inside it."""
    path = Path(path).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def write(
    args: argparse.Namespace | None,
    name: str,
    title: str,
    body: str,
    *,
    raw: Path | str | None = None,
    extra: tuple[tuple[str, str], ...] = (),
    command_line: str | None = None,
    cpu_name: str | None = None,
    date: str | None = None,
) -> Path | None:
    """Write `body` (Markdown) under a header to docs/benchmarks/`name`.md, or to `args.doc`; nothing with
    `args.no_doc`. `command_line`, `cpu_name` and `date` default to this run's. Written atomically; returns
    the path."""
    if args is not None and getattr(args, "no_doc", False):
        return None
    path = (getattr(args, "doc", None) if args is not None else None) or DOCS / f"{name}.md"
    lines = [
        f"# {title}",
        "",
        "<!-- Written by the command below; rerun it instead of editing this file. -->",
        "",
        f"- Command: `{command_line or command()}`",
        f"- CPU: {cpu_name or cpu()}",
        f"- Date: {date or datetime.date.today().isoformat()}",
    ]
    if raw is not None:
        lines.append(f"- Raw results: `{relative(raw)}`")
    lines += [f"- {key}: {value}" for key, value in extra]
    text = "\n".join(lines) + "\n\n" + body.strip() + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)
    return path
