"""The bundled example compiles into a real classifier whose compiled predictions match torch."""

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from cascc.cli.main import main
from support import EXAMPLES


@pytest.fixture(scope="module")
def digits():
    import importlib.util

    spec = importlib.util.spec_from_file_location("digits_example", EXAMPLES / "digits.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_example_compiles_and_selftests(tmp_path, digits):
    out = tmp_path / "digits"
    runner = CliRunner()
    result = runner.invoke(
        main,
        [
            "compile",
            f"{EXAMPLES / 'digits.py'}:mlp",
            "--target",
            "x86",
            "--sparsity",
            "0.9",
            "-o",
            str(out),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    manifest = json.loads(result.output)
    kept = sum(r["nonzero"] for r in manifest["layers"])
    total = sum(r["weights"] for r in manifest["layers"])
    assert abs(kept / total - 0.1) < 1e-3
    result = runner.invoke(main, ["run", str(out), "--selftest"])
    assert result.exit_code == 0 and "passed" in result.output

    # compiled predictions equal torch's masked-model predictions on every held-out digit
    from cascc import frontends, passes
    from cascc.runtime.session import Session

    program = passes.run(
        frontends.load(f"{EXAMPLES / 'digits.py'}:mlp"), [("prune.magnitude", {"sparsity": 0.9})]
    )
    _, _, xte, _ = digits.data()
    session = Session(out / "model.so")
    compiled = np.concatenate([session.run([x[None].numpy()])[0] for x in xte])
    module = program.module()
    with torch.no_grad():
        eager = np.concatenate([module(x[None]).numpy() for x in xte])  # exported with batch 1
    np.testing.assert_allclose(compiled, eager, atol=1e-4)
    assert (compiled.argmax(1) == eager.argmax(1)).all()


def test_dense_example_is_a_real_classifier(digits):
    module, (x,) = digits.mlp()
    assert x.shape == (1, 64)
    assert digits.accuracy(module) > 0.95
