"""Every CLI choice is a registry's contents: no name list is written by hand, and a name registered later
(a test's own criterion, allocator, optimizer, schedule, baseline) is a choice at once, its options applying
where its declaration takes them."""

import click
import pytest

from cascc.cli.main import main
from cascc.cli.options import Names
from support import assert_clean_error, invoke, model_ref


def _choices(command: str, option: str) -> list[str]:
    (param,) = [p for p in main.commands[command].params if option in p.opts]
    assert isinstance(param.type, Names), f"{command} {option} is not read from a registry"
    return list(param.type.choices)


def _registries():
    from cascc import passes
    from cascc.experiments.planted import TASKS
    from cascc.passes.density import ALLOCATORS
    from cascc.passes.init import INITS
    from cascc.passes.registry import choices
    from cascc.passes.train import LR_SCHEDULES, OPTIMIZERS
    from cascc.runtime.bench import BASELINES
    from cascc.targets import TARGETS
    from cascc.training.plan import SCHEDULES
    from cascc.training.presets import PRESETS

    assert passes.PASSES
    sparsify = {
        "--criterion": list(choices("prune")),
        "--allocator": list(ALLOCATORS),
        "--reparam": ["none", *choices("reparam")],
    }
    return {
        **{("compile", k): v for k, v in sparsify.items()},
        **{("prune", k): v for k, v in sparsify.items()},
        **{("analyze", k): v for k, v in sparsify.items()},
        ("train", "--criterion"): sparsify["--criterion"],
        ("train", "--allocator"): sparsify["--allocator"],
        ("compile", "--target"): sorted(TARGETS),
        ("train", "--optimizer"): list(OPTIMIZERS),
        ("train", "--lr-schedule"): list(LR_SCHEDULES),
        ("train", "--schedule"): list(SCHEDULES),
        ("train", "--init"): list(INITS),
        ("train", "--preset"): list(PRESETS),
        ("bench", "--baseline"): list(BASELINES),
        ("check", "--baseline"): list(BASELINES),
        ("planted", "--task"): list(TASKS),
    }


def test_every_choice_is_a_registry():
    for (command, option), names in _registries().items():
        assert _choices(command, option) == names, (command, option)
    assert _choices("compile", "--criterion") == [
        "magnitude", "random", "random-regular", "snip", "synflow", "nm", "block",
    ]  # fmt: skip
    assert "global" in _choices("compile", "--allocator")
    assert _choices("train", "--init")[-1] == "sparse-aware"  # reparam.sparse_init, offered as an init


def test_no_choice_is_written_by_hand():
    for command in main.commands.values():
        for param in command.params:
            if isinstance(param.type, click.Choice):
                assert isinstance(param.type, Names), (command.name, param.opts)


@pytest.fixture
def registered():
    """A criterion, an allocator, an optimizer, a schedule and a baseline registered by the test, removed
    after it."""
    from cascc.passes import PASSES, prune
    from cascc.passes.density import ALLOCATORS, uniform
    from cascc.passes.train import OPTIMIZERS, sgd
    from cascc.runtime.bench import BASELINES
    from cascc.training.plan import SCHEDULES

    @prune._scored
    def by_block(program, prunable, block: str = "4x1"):
        """Magnitude, with a `block` option of its own."""
        weights = program.masked_weights()
        return {layer.name: weights[layer.name].abs() for layer in prunable}

    def tidy(layers, sparsity, *, margin: float = 3.0):
        """Uniform, with a `margin` option of its own."""
        return uniform(layers, sparsity)

    added = [
        (PASSES, "prune.test_by_block", by_block),
        (ALLOCATORS, "test-tidy", tidy),
        (OPTIMIZERS, "test-sgd", sgd),
        (SCHEDULES, "test-static", SCHEDULES["static"]),
        (BASELINES, "test-torch", BASELINES["torch"]),
    ]
    for registry, name, item in added:
        registry.register(name)(item)
    yield
    for registry, name, _ in added:
        del registry[name]


def test_a_registration_is_a_choice_and_its_options_apply(registered, tmp_path):
    assert "test-by-block" in _choices("prune", "--criterion")
    assert "test-tidy" in _choices("prune", "--allocator")
    assert "test-sgd" in _choices("train", "--optimizer")
    assert "test-static" in _choices("train", "--schedule")
    assert "test-torch" in _choices("bench", "--baseline")
    code, text = invoke("prune", "--help")
    assert "test-by-block" in text and "test-tidy" in text
    assert _registries()[("prune", "--criterion")] == _choices("prune", "--criterion")

    out = tmp_path / "p.pt2"
    # --block and --margin reach the new criterion and allocator, which declare them
    args = ["--criterion", "test-by-block", "--block", "2x2", "--allocator", "test-tidy", "--margin", "2"]
    code, text = invoke("prune", model_ref("mlp"), *args, "--sparsity", "0.5", "-o", out)
    assert code == 0, text
    # --nm does not: the refusal names where it applies, read from the declarations
    code, text = invoke(
        "prune", model_ref("mlp"), "--criterion", "test-by-block", "--nm", "2:4", "-s", "0.5", "-o", out
    )
    assert_clean_error(code, text, 2, "--nm does nothing here", "--criterion nm")
    # and --block now applies with two criteria
    code, text = invoke("prune", model_ref("mlp"), "--block", "2x2", "-s", "0.5", "-o", tmp_path / "q.pt2")
    assert_clean_error(code, text, 2, "--block does nothing here", "block/test-by-block")
    assert not (tmp_path / "q.pt2").exists()


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["--margin", "2", "--allocator", "erk"], ["--margin does nothing here", "--allocator cascade"]),
        (["--block", "2x2"], ["--block does nothing here", "--criterion block"]),
        (["--nm", "4:8"], ["--nm does nothing here", "--criterion nm"]),
        (["--dense-ends", "--allocator", "global"], ["--dense-ends", "--allocator uniform"]),
        (["--data", "digits"], ["--data does nothing here", "--criterion snip", "--reparam rescale"]),
    ],
)
def test_an_option_no_declaration_takes_is_refused(tmp_path, args, fragments):
    code, text = invoke("prune", model_ref("mlp"), *args, "--sparsity", "0.5", "-o", tmp_path / "p.pt2")
    assert_clean_error(code, text, 2, *fragments)


def test_an_unknown_name_lists_the_registry():
    from cascc.errors import OptionError
    from cascc.passes.train import OPTIMIZERS
    from cascc.recipe import Recipe
    from cascc.training.plan import TrainPlan

    with pytest.raises(OptionError, match=r"unknown criterion 'nope'.*magnitude, random, random-regular"):
        Recipe(criterion="nope", sparsity=0.5).steps()
    with pytest.raises(OptionError, match=f"unknown optimizer 'nope'.*{', '.join(OPTIMIZERS)}"):
        TrainPlan(optimizer="nope")
    with pytest.raises(
        OptionError, match=r"unknown schedule 'nope'.*static, gmp, imp, lrr, rigl, set, sculpt"
    ):
        TrainPlan(schedule="nope")
