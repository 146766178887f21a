"""Fuzz: hostile and broken model files. Each case asserts exit 2, a message naming the file, no traceback,
no output left behind, the input unchanged, and no marker written by a payload."""

import hashlib
import subprocess
import sys
import zipfile

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hostile
from support import assert_clean_error, invoke


@pytest.fixture(scope="module")
def valid_pt2(tmp_path_factory):
    path = tmp_path_factory.mktemp("pt2") / "linear.pt2"
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(4, 3))
    torch.export.save(torch.export.export(module, (torch.randn(2, 4),)), path)
    return path


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_refused(tmp_path, model, *fragments, marker=None, command=("prune", "--sparsity", "0.5")):
    out = tmp_path / "out.pt2"
    before = digest(model)
    code, text = invoke(command[0], model, *command[1:], "-o", out)
    assert_clean_error(code, text, 2, str(model), *fragments)
    assert not out.exists() and not list(tmp_path.glob(".out*"))
    assert digest(model) == before
    assert marker is None or not marker.exists(), "a payload in the file ran"


@pytest.mark.parametrize("case", sorted(hostile.HOSTILE_PT2))
def test_hostile_pt2_never_runs_its_payload(tmp_path, valid_pt2, case):
    marker = tmp_path / "payload-ran"
    bad = hostile.HOSTILE_PT2[case](valid_pt2, tmp_path / "hostile.pt2", marker)
    assert_refused(tmp_path, bad, marker=marker)


@pytest.mark.slow
def test_unguarded_torch_would_have_run_the_payloads(tmp_path, valid_pt2):
    """The corpus is real: plain torch.export.load executes the pickle payloads."""
    ran = []
    for case in ("pickled sample inputs", "pickled weight", "pickled constant"):
        marker = tmp_path / case.replace(" ", "-")
        bad = hostile.HOSTILE_PT2[case](valid_pt2, tmp_path / f"{marker.name}.pt2", marker)
        subprocess.run(
            [
                sys.executable,
                "-c",
                f"import torch\ntry: torch.export.load({str(bad)!r})\nexcept Exception: pass",
            ],
            capture_output=True,
            timeout=120,
        )
        ran.append(marker.exists())
    assert all(ran)


def test_symbolic_shape_strings_cannot_hold_code():
    from cascc.frontends.safe_pt2 import PickleRefused, _checked_sympify

    calls = []
    sympify = _checked_sympify(lambda expr, *a, locals=None, **k: calls.append(expr))
    sympify("s0 + 2*s1 - FloorDiv(s0, 4)", locals={"s0": 0, "s1": 1, "FloorDiv": 2})
    assert calls == ["s0 + 2*s1 - FloorDiv(s0, 4)"]
    for code in ("__import__('os').system('x')", "s0.__class__", "open('m', 'w')", "s0; import os"):
        with pytest.raises(PickleRefused):
            sympify(code, locals={"s0": 0})
    assert len(calls) == 1


def broken_files(valid_pt2):
    data = valid_pt2.read_bytes()
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0xFF
    return {
        "empty": b"",
        "random": bytes(range(256)) * 8,
        "truncated": data[: len(data) // 3],
        "bit-flipped": bytes(flipped),
    }


@pytest.mark.parametrize("case", ["empty", "random", "truncated", "bit-flipped", "wrong zip"])
def test_broken_pt2_is_one_paragraph(tmp_path, valid_pt2, case):
    bad = tmp_path / "broken.pt2"
    if case == "wrong zip":
        with zipfile.ZipFile(bad, "w") as z:
            z.writestr("hello.txt", "not a model")
    else:
        bad.write_bytes(broken_files(valid_pt2)[case])
    assert_refused(tmp_path, bad)


def test_broken_pt2_prints_no_torch_log_line(tmp_path, valid_pt2):
    """torch logs a traceback for some unreadable archives; a subprocess sees what the user sees."""
    bad = tmp_path / "broken.pt2"
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr("m/hello.txt", "not a model")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "cascc.cli",
            "prune",
            str(bad),
            "--sparsity",
            "0.5",
            "-o",
            str(tmp_path / "o.pt2"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and result.stderr.count("error:") == 1, result.stderr
    assert str(bad) in result.stderr


@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(offset=st.integers(0, 10**6), value=st.integers(0, 255))
def test_any_single_byte_change_is_loaded_or_refused_cleanly(tmp_path_factory, valid_pt2, offset, value):
    """A byte changed anywhere: the archive loads (it hit padding or a name) or is refused in one paragraph."""
    tmp_path = tmp_path_factory.mktemp("flip")
    data = bytearray(valid_pt2.read_bytes())
    data[offset % len(data)] = value
    bad = tmp_path / "flipped.pt2"
    bad.write_bytes(bytes(data))
    code, text = invoke("prune", bad, "--sparsity", "0.5", "-o", tmp_path / "out.pt2")
    assert "Traceback" not in text and "internal error" not in text, text
    assert code in (0, 2), text
    if code == 2:
        assert str(bad) in text and not (tmp_path / "out.pt2").exists()


def test_cascc_metadata_is_checked(tmp_path, valid_pt2):
    """A .pt2's cascc.json naming an unknown pass, unknown weights or the wrong types is refused."""
    for meta in (
        '{"masked": [], "history": [{"name": "prune.nonexistent", "options": {}}]}',
        '{"masked": ["no.such.weight"], "history": []}',
        '{"masked": "0.weight", "history": []}',
        "[" * 100_000,
    ):
        bad = hostile.rewrite_zip(
            valid_pt2,
            tmp_path / "meta.pt2",
            lambda n, b, meta=meta: (
                {n: b, n.split("/", 1)[0] + "/extra/cascc.json": meta.encode()}
                if n.endswith("byteorder")
                else b
            ),
        )
        assert_refused(tmp_path, bad, "cascc metadata")


def test_factory_that_exits_is_an_error(tmp_path):
    model = tmp_path / "exits.py"
    model.write_text("import sys\ndef f():\n    sys.exit(0)\n")
    code, text = invoke("compile", f"{model}:f", "-o", tmp_path / "o")
    assert_clean_error(code, text, 2, "exits.py", "SystemExit")
    assert not (tmp_path / "o").exists()


FACTORIES = {
    "no outputs": (
        "class M(torch.nn.Module):\n    def forward(self, x):\n        return ()\n",
        "M()",
        "torch.randn(1, 4)",
    ),
    "int64 into a Linear": ("", "torch.nn.Linear(4, 2)", "torch.ones(1, 4, dtype=torch.int64)"),
    "wrong input width": ("", "torch.nn.Linear(4, 2)", "torch.ones(1, 5)"),
    "zero batch": ("", "torch.nn.Linear(4, 2)", "torch.ones(0, 4)"),
    "float64": ("", "torch.nn.Linear(4, 2).double()", "torch.ones(1, 4, dtype=torch.float64)"),
}


@pytest.mark.parametrize("case", sorted(FACTORIES))
def test_broken_factory_is_one_paragraph(tmp_path, case):
    head, module, example = FACTORIES[case]
    model = tmp_path / "factory.py"
    model.write_text(f"import torch\n{head}\ndef f():\n    return {module}, ({example},)\n")
    result = subprocess.run(
        [sys.executable, "-m", "cascc.cli", "compile", f"{model}:f", "-o", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and result.stderr.count("error:") == 1, result.stderr
    assert "factory.py" in result.stderr and not (tmp_path / "out").exists()


def test_dict_outputs_compile_and_self_test(tmp_path):
    model = tmp_path / "dict_out.py"
    model.write_text(
        "import torch\nclass D(torch.nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        "        self.l = torch.nn.Linear(4, 2)\n    def forward(self, x):\n"
        "        return {'a': self.l(x), 'b': (self.l(x) * 2,)}\n"
        "def f():\n    return D(), (torch.randn(1, 4),)\n"
    )
    code, text = invoke("compile", f"{model}:f", "-o", tmp_path / "out")
    assert code == 0, text
    code, text = invoke("run", tmp_path / "out", "--selftest")
    assert code == 0 and "passed" in text, text
