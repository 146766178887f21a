"""Fuzz: tampered artifacts and manifests, the library cache, and `compile -o/--force` on what is not an
artifact. Each refusal is exit 2 with one paragraph naming the file, no traceback, nothing executed."""

import json
import os
import shutil

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cascc
from support import assert_clean_error, invoke, model_ref


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("art") / "mlp"
    cascc.compile(model_ref("mlp"), sparsity=0.5, out=out)
    return out


@pytest.fixture
def copy(built, tmp_path):
    target = tmp_path / "art"
    shutil.copytree(built, target)
    return target


def edit_manifest(path, change):
    manifest = json.loads((path / "manifest.json").read_text())
    change(manifest)
    (path / "manifest.json").write_text(json.dumps(manifest))


def refused(path, *fragments, command="run"):
    args = ("run", path, "--selftest") if command == "run" else ("check", path, "--max-size", "1GB")
    code, text = invoke(*args)
    assert_clean_error(code, text, 2, *fragments)
    return text


TAMPERED = {
    "format 99": lambda m: m.update(format=99),
    "no files": lambda m: m.pop("files"),
    "files a list": lambda m: m.update(files=[]),
    "bytes negative": lambda m: m["files"]["model.so"].update(bytes=-(10**9)),
    "target bogus": lambda m: m["target"].update(name="bogus"),
    "device bogus": lambda m: m["target"].update(device="tpu"),
    "x86 on cuda": lambda m: m["target"].update(device="cuda"),
    "rtol 1e300": lambda m: m["selftest"].update(rtol=1e300),
    "depth 1e300": lambda m: m["selftest"].update(accumulation_depth=10**300),
    "shape 2**62": lambda m: m["inputs"][0].update(shape=[2**62, 20]),
    "dtype object": lambda m: m["inputs"][0].update(dtype="object"),
    "seed a string": lambda m: m["source"].update(seed="x"),
    "layers a dict": lambda m: m.update(layers={}),
    "path escape": lambda m: m["files"].update({"../x": m["files"]["model.so"]}),
    "absolute path": lambda m: m["files"].update({"/etc/hostname": m["files"]["model.so"]}),
    "self-test unlisted": lambda m: m["files"].pop("selftest.npz"),
    "unknown field": lambda m: m.update(extra=1),
}


@pytest.mark.parametrize("case", sorted(TAMPERED))
def test_tampered_manifest_is_refused(copy, case):
    edit_manifest(copy, TAMPERED[case])
    refused(copy, "manifest.json", "invalid manifest")


@pytest.mark.parametrize(
    "raw",
    [b"", b"\xff\xfe not utf-8", b"[" * 100_000, b'{"format": 2', b"null"],
    ids=["empty", "bytes", "deep", "cut", "null"],
)
def test_unreadable_manifest_is_refused(copy, raw):
    (copy / "manifest.json").write_bytes(raw)
    refused(copy, "manifest.json")


def test_unlisted_file_is_refused(copy):
    shutil.copyfile(copy / "model.so", copy / "evil.so")
    refused(copy, "evil.so", "does not list")


def test_linked_file_is_refused(copy, tmp_path):
    moved = tmp_path / "elsewhere.so"
    (copy / "model.so").rename(moved)
    (copy / "model.so").symlink_to(moved)
    refused(copy, "model.so", "not a plain file")


def test_replaced_library_is_refused(copy):
    (copy / "model.so").write_bytes(b"\x7fELF not really")
    refused(copy, "model.so", "sha256")


def test_expect_digest_pins_the_build(copy):
    digest = cascc.runtime.artifact.manifest_digest(copy)
    code, text = invoke("run", copy, "--selftest", "--expect-digest", digest)
    assert code == 0, text
    edit_manifest(copy, lambda m: m["source"].update(seed=1))  # any edit at all changes the digest
    for command in (
        ("run", copy, "--selftest"),
        ("bench", copy, "--rounds", "3"),
        ("check", copy, "--max-size", "1GB"),
    ):
        code, text = invoke(*command, "--expect-digest", digest)
        assert_clean_error(code, text, 2, "manifest.json", "not the expected")


@settings(max_examples=30, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(
    path=st.sampled_from(
        ["format", "target", "inputs", "outputs", "source", "passes", "layers", "selftest", "files"]
    ),
    value=st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(),
        st.text(max_size=5),
        st.lists(st.integers(), max_size=3),
    ),
)
def test_any_field_replaced_by_junk_is_refused_or_harmless(built, tmp_path_factory, path, value):
    target = tmp_path_factory.mktemp("junk") / "art"
    shutil.copytree(built, target)
    edit_manifest(target, lambda m: m.update({path: value}))
    code, text = invoke("run", target, "--selftest")
    assert code == 2 and "Traceback" not in text and "internal error" not in text, text


def test_planted_cached_library_never_runs(copy, tmp_path, monkeypatch):
    """The runtime loads a private copy named by the library's hash; a file planted under that name (or a
    replaced one) is checked against the manifest's sha256 before every load and replaced."""
    import tempfile

    monkeypatch.setattr(tempfile, "gettempdir", lambda: str(tmp_path))
    sha = json.loads((copy / "manifest.json").read_text())["files"]["model.so"]["sha256"]
    cache = tmp_path / f"cascc-libs-{os.getuid()}"
    cache.mkdir(mode=0o700)
    planted = cache / f"{sha}.so"
    planted.write_bytes(b"planted")
    assert cascc.selftest(copy).passed
    assert planted.read_bytes() == (copy / "model.so").read_bytes()


def test_shared_library_cache_folder_is_refused(copy, tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "gettempdir", lambda: str(tmp_path))
    cache = tmp_path / f"cascc-libs-{os.getuid()}"
    cache.mkdir()
    cache.chmod(0o777)
    code, text = invoke("run", copy, "--selftest")
    assert_clean_error(code, text, 2, str(cache), "not a private directory")


# --- compile -o / --force ----------------------------------------------------------------------------------


def test_force_never_replaces_a_folder_that_is_not_an_artifact(tmp_path):
    documents = tmp_path / "documents"
    documents.mkdir()
    (documents / "thesis.txt").write_text("years of work")
    code, text = invoke("compile", model_ref("mlp"), "-o", documents, "--force")
    assert_clean_error(code, text, 2, "documents", "not a cascc artifact")
    assert (documents / "thesis.txt").read_text() == "years of work"


def test_force_never_replaces_the_folder_holding_the_model(built, tmp_path):
    art = tmp_path / "art"
    shutil.copytree(built, art)
    model = art / "model.py"  # an artifact folder that a user also put the model file in
    shutil.copyfile(model_ref("mlp").rsplit(":", 1)[0], model)
    code, text = invoke("compile", f"{model}:mlp", "-o", art, "--force")
    assert_clean_error(code, text, 2, "holds an input")
    assert model.exists()


@pytest.mark.parametrize("case", ["a file", "under a file", "unwritable"])
def test_bad_output_is_refused_before_the_build(tmp_path, monkeypatch, case):
    import cascc.lower

    monkeypatch.setattr(cascc.lower, "lower", lambda *a, **k: pytest.fail("lowered before checking -o"))
    blocker = tmp_path / "file"
    blocker.write_text("x")
    out = {"a file": blocker, "under a file": blocker / "sub" / "out", "unwritable": tmp_path / "ro" / "out"}[
        case
    ]
    if case == "unwritable":
        (tmp_path / "ro").mkdir(mode=0o500)
        if os.access(tmp_path / "ro", os.W_OK):
            pytest.skip("running as a user that can write anywhere (root)")
    code, text = invoke("compile", model_ref("mlp"), "-o", out, "--force")
    assert_clean_error(code, text, 2, str(out))


def test_a_kill_between_the_renames_is_recovered(built, tmp_path):
    """Killed after the old artifact became the backup and before the new one moved in: the next run puts
    the backup back (and says so), and temporary folders of dead builds are removed."""
    out = tmp_path / "art"
    shutil.copytree(built, tmp_path / ".art.old.999999")  # pid 999999: not running
    (tmp_path / ".art.tmp.999999.abcd").mkdir()
    (tmp_path / ".art.tmp.999999.abcd" / "lib0.o").write_bytes(b"debris")
    code, text = invoke("compile", model_ref("mlp"), "-o", out, "--force")
    assert code == 0, text
    assert "restored the previous artifact" in text and "removed .art.tmp.999999.abcd" in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["art"]


def test_full_disk_mid_write_is_one_paragraph_and_leaves_nothing(tmp_path, monkeypatch):
    import errno

    import cascc.runtime.artifact

    def full(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cascc.runtime.artifact, "write_npz", full)
    code, text = invoke("compile", model_ref("mlp"), "-o", tmp_path / "art")
    assert_clean_error(code, text, 2, "art", "No space left on device")
    assert list(tmp_path.iterdir()) == []


def test_huge_input_shape_is_refused_before_allocation(tmp_path):
    code, text = invoke(
        "compile", model_ref("mlp"), "--input-shape", "x=1000000000x1000000000", "-o", tmp_path / "o"
    )
    assert code == 2 and "Traceback" not in text and "past any input" in text, text


def test_library_of_another_artifact_is_refused(copy, tmp_path):
    """model.so swapped for another model's, with the hashes updated to match (integrity is not origin):
    the library rejects the manifest's signature, which is one paragraph, not an internal error."""
    from cascc.files import file_sha256

    other = tmp_path / "other"
    cascc.compile(model_ref("lenet_300_100"), out=other)
    shutil.copyfile(other / "model.so", copy / "model.so")

    def rehash(manifest):
        manifest["files"]["model.so"] = {
            "bytes": (copy / "model.so").stat().st_size,
            "sha256": file_sha256(copy / "model.so"),
        }

    edit_manifest(copy, rehash)
    refused(copy, "model.so", "not the library the manifest describes")
