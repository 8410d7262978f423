"""`vitamin_cli.load` and `vitamin verify --deep`: strict, safe loading of pulled checkpoints.

A tiny open_clip architecture in a zoo file of its own stands in for the zoo's models, whose real
checkpoints are gigabytes.
"""

from __future__ import annotations

import io
import json
import os
import pickle
from pathlib import Path

import pytest
from conftest import Hub, Run, build_repo, put_in_cache, tiny_model, tiny_zoo_text, vitamin_process

from vitamin_cli import zoo
from vitamin_cli.checkpoints.store import Store
from vitamin_cli.errors import UsageError
from vitamin_cli.models import arch, loading

WEIGHTS = "{repo: test/tiny-clip, filename: pytorch_model.bin}"


@pytest.fixture
def tiny_zoo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> zoo.Zoo:
    path = tmp_path / "tiny-zoo.yaml"
    path.write_text(tiny_zoo_text([tiny_model("Tiny-ViT-s1M", weights=WEIGHTS)]))
    monkeypatch.setenv("VITAMIN_ZOO", str(path))
    registry = zoo.load(path)
    # the reported sizes of this made-up model are its real ones
    counts = arch.count(arch.config(registry, registry.get("Tiny-ViT-s1M")))
    sizes = (round(counts.params_image_m, 2), round(counts.params_text_m, 2))
    path.write_text(tiny_zoo_text([tiny_model("Tiny-ViT-s1M", weights=WEIGHTS, params=sizes)]))
    return zoo.load(path)


def tiny_state(registry: zoo.Zoo) -> dict[str, object]:
    model = arch.build(arch.config(registry, registry.get("Tiny-ViT-s1M")))
    return dict(model.state_dict())


def saved(state: object) -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def install(registry: zoo.Zoo, data: bytes) -> Path:
    """Put a checkpoint into the cache and the manifest as a pull would (same layout, same records)."""
    model = registry.get("Tiny-ViT-s1M")
    assert model.weights is not None
    path = put_in_cache(model.name, model.weights.repo, model.weights.filename, data)
    return path


def test_load_a_pulled_checkpoint(tiny_zoo: zoo.Zoo) -> None:
    import torch

    state = tiny_state(tiny_zoo)
    install(tiny_zoo, saved(state))
    model, preprocess, tokenizer = loading.load(tiny_zoo, "tiny-vit-s1m", hub_root=Store().root, dtype="bf16")
    key = "visual.conv1.weight"
    assert torch.equal(model.state_dict()[key].float(), state[key].to(torch.bfloat16).float())  # type: ignore[union-attr]
    from PIL import Image

    pixels = preprocess(Image.new("RGB", (100, 60)))
    assert tuple(pixels.shape) == (3, 32, 32)  # the model's own resolution
    with torch.no_grad():
        embedding = model.encode_image(pixels[None].to(torch.bfloat16))
    assert tuple(embedding.shape) == (1, 32)
    assert tuple(tokenizer(["a cat"]).shape) == (1, 77)


def test_the_package_level_load(tiny_zoo: zoo.Zoo) -> None:
    import torch

    import vitamin_cli

    install(tiny_zoo, saved(tiny_state(tiny_zoo)))
    model, _, _ = vitamin_cli.load("Tiny-ViT-s1M")
    assert model.visual.image_size == (32, 32)
    assert {p.dtype for p in model.parameters()} == {torch.float32}  # fp32 unless asked, on every device
    for given in ({"dtype": "bf16"}, {"precision": "bf16"}, {"dtype": "bf16", "precision": "bf16"}):
        model, _, _ = vitamin_cli.load("Tiny-ViT-s1M", **given)  # precision= is dtype='s older name
        assert {p.dtype for p in model.parameters()} == {torch.bfloat16}, given
    with pytest.raises(UsageError, match="give one"):
        vitamin_cli.load("Tiny-ViT-s1M", dtype="fp32", precision="bf16")


def test_a_model_not_pulled_names_the_pull_command(tiny_zoo: zoo.Zoo) -> None:
    """Where a checkpoint must be in the cache already (bench --weights), its absence names the pull; load()
    pulls it instead (tests/test_shared_cache.py)."""
    from vitamin_cli.checkpoints.pull import checkpoint

    with pytest.raises(UsageError) as caught:
        checkpoint(tiny_zoo.get("Tiny-ViT-s1M"), Store())
    assert caught.value.hint == "run `vitamin pull Tiny-ViT-s1M` first"


def test_a_renamed_key_is_refused(tiny_zoo: zoo.Zoo) -> None:
    state = tiny_state(tiny_zoo)
    state["visual.conv1.weight_renamed"] = state.pop("visual.conv1.weight")
    install(tiny_zoo, saved(state))
    with pytest.raises(loading.CheckpointError, match=r"1 missing keys \(visual.conv1.weight\).*1 unexpected keys"):
        loading.load(tiny_zoo, "Tiny-ViT-s1M", hub_root=Store().root)


def test_a_wrong_shape_is_refused(tiny_zoo: zoo.Zoo) -> None:
    import torch

    state = tiny_state(tiny_zoo)
    state["text_projection"] = torch.zeros(32, 16)
    install(tiny_zoo, saved(state))
    with pytest.raises(
        loading.CheckpointError, match=r"text_projection has shape \(32, 16\), the architecture \(32, 32\)"
    ):
        loading.load(tiny_zoo, "Tiny-ViT-s1M", hub_root=Store().root)


class _RunsCode:
    """A pickle that would run code when unpickled: it creates a file."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.target}",))


def test_weights_only_refuses_a_pickle_that_runs_code(tiny_zoo: zoo.Zoo, tmp_path: Path) -> None:
    target = tmp_path / "pwned"
    state = tiny_state(tiny_zoo)
    data = saved({**state, "payload": _RunsCode(target)})
    proof = tmp_path / "proof"
    pickle.loads(pickle.dumps(_RunsCode(proof)))  # the payload is real: plain unpickling runs it
    assert proof.exists()
    install(tiny_zoo, data)
    with pytest.raises(loading.CheckpointError, match="does not unpickle"):
        loading.load(tiny_zoo, "Tiny-ViT-s1M", hub_root=Store().root)
    assert not target.exists()


def test_verify_deep(tiny_zoo: zoo.Zoo, run: Run) -> None:
    install(tiny_zoo, saved(tiny_state(tiny_zoo)))
    result = run("verify", "--deep", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)[0]["status"] == "ok"


def test_verify_deep_reports_a_checkpoint_that_does_not_fit(tiny_zoo: zoo.Zoo, run: Run) -> None:
    state = tiny_state(tiny_zoo)
    del state["logit_scale"]
    install(tiny_zoo, saved(state))
    assert run("verify").exit_code == 0  # the file is what was recorded...
    result = run("verify", "--deep", "--json")  # ...but it is not a whole model
    assert result.exit_code == 1
    (row,) = json.loads(result.stdout)
    assert row["status"] == "corrupt"
    assert "missing keys (logit_scale)" in row["problems"][0]


def test_verify_deep_finds_nans(tiny_zoo: zoo.Zoo, run: Run) -> None:
    import torch

    state = tiny_state(tiny_zoo)
    state["text_projection"] = torch.full((32, 32), float("nan"))
    install(tiny_zoo, saved(state))
    result = run("verify", "--deep", "--json")
    assert result.exit_code == 1
    (problem,) = json.loads(result.stdout)[0]["problems"]
    assert problem.endswith("text_projection is not finite: it holds NaN or inf")  # refused as it loads


@pytest.mark.slow  # seconds of wall time (subprocesses started, stopped or waited on); CI runs it
def test_pull_then_verify_deep_end_to_end(hub: Hub, tiny_zoo: zoo.Zoo) -> None:
    build_repo(hub.mirrors, "test/tiny-clip", {"pytorch_model.bin": saved(tiny_state(tiny_zoo))})
    assert vitamin_process("pull", "Tiny-ViT-s1M").exit_code == 0
    result = vitamin_process("verify", "--deep")
    assert result.exit_code == 0, result.stderr
    assert "1 intact" in result.stdout


def test_bad_arguments_fail_before_anything_is_built(tiny_zoo: zoo.Zoo, tmp_path: Path) -> None:
    import vitamin_cli
    from vitamin_cli.errors import UnknownModelError

    for device in ("banana", "", "cuda:x"):
        with pytest.raises(UsageError, match="unknown device"):
            loading.load(tiny_zoo, "Tiny-ViT-s1M", checkpoint=tmp_path / "x.pt", device=device)
    with pytest.raises(UsageError, match="no CUDA device"):
        loading.load(tiny_zoo, "Tiny-ViT-s1M", checkpoint=tmp_path / "x.pt", device="cuda")
    with pytest.raises(loading.CheckpointError, match="no such file"):
        loading.load(tiny_zoo, "Tiny-ViT-s1M", checkpoint=tmp_path / "missing.pt")
    with pytest.raises(loading.CheckpointError, match="a folder, not a checkpoint file"):
        vitamin_cli.load("Tiny-ViT-s1M", checkpoint="")  # the current folder
    with pytest.raises(loading.CheckpointError, match="a folder, not a checkpoint file"):
        loading.load(tiny_zoo, "Tiny-ViT-s1M", checkpoint=tmp_path)
    with pytest.raises(UnknownModelError, match="a model name is text"):
        vitamin_cli.load(None, checkpoint=tmp_path / "x.pt")  # type: ignore[arg-type]
