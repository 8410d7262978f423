"""`vitamin show`: one model in full, and an open_clip snippet that really builds it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import Run

from vitamin_cli import zoo
from vitamin_cli.views import render


def test_show_text(run: Run) -> None:
    result = run("show", "ViTamin-XL-384")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert out.startswith("ViTamin-XL-384-s41B")
    for expected in (
        "384 px, 576 patches",
        "27 layers, width 1152",
        "40B+1B (41,000,000,000 in all)",
        "image 436.1 + text 488.7",
        "image 281.9 + text 33.1",
        "ImageNet 82.9",
        "hf://jienengchen/ViTamin-XL-384px/pytorch_model.bin",
        "not pinned yet",
        "pulled        no: `vitamin pull ViTamin-XL-384-s41B` fetches it",
        "open_clip config 'ViTamin-XL-384', defined in zoo.yaml",
    ):
        assert expected in out, expected
    # the other XL-384 row: the same network, trained on fewer samples
    (row,) = [line for line in out.splitlines() if "ViTamin-XL-384-s13.3B" in line]
    assert row.split()[1:6] == ["384", "12.8B+0.5B", "82.6", "same", "hub"]
    (row,) = [line for line in out.splitlines() if "ViTamin-XL-256-s40B" in line]
    assert row.split()[4] == "other"
    assert 'create_model_and_transforms("ViTamin-XL-384", pretrained=checkpoint)' in out


def test_show_unreleased(run: Run) -> None:
    out = run("show", "vit-b-32-s128m").stdout
    assert out.startswith("ViT-B-32-s128M")
    assert "none published" in out
    assert "no download link" in out
    assert "ViT-B-32-s512M" in out and "ViT-B-32-s1.28B" in out
    assert 'create_model_and_transforms("ViT-B-32")' in out


def test_show_json(run: Run) -> None:
    result = run("show", "ViTamin-L", "--json")
    data = json.loads(result.stdout)
    assert data["name"] == "ViTamin-L-224-s12.8B"
    assert data["architecture"] == {"name": "ViTamin-L", "upstream": True, "config": None}
    assert data["siblings"] == [
        "ViTamin-L-s128M",
        "ViTamin-L-s512M",
        "ViTamin-L-s1.28B",
        "ViTamin-L-256-s13B",
        "ViTamin-L-336-s13B",
        "ViTamin-L-384-s13B",
    ]
    assert data["wins"] == []
    assert 'hf_hub_download("jienengchen/ViTamin-L-224px", "pytorch_model.bin")' in data["snippet"]
    winner = json.loads(run("show", "ViTamin-L-s128M", "--json").stdout)
    assert winner["wins"] == ["imagenet", "dist_shift", "retrieval"]


def test_snippet_pins_revision_when_zoo_does(zoo_copy: Any) -> None:
    text = zoo_copy.read_text()
    zoo_copy.write_text(
        text.replace(
            "repo: jienengchen/ViTamin-S, filename: pytorch_model.bin, revision: null",
            "repo: jienengchen/ViTamin-S, filename: pytorch_model.bin, revision: abc123",
        )
    )
    registry = zoo.load(zoo_copy)
    assert 'revision="abc123"' in render.open_clip_snippet(registry, registry.get("ViTamin-S"))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["ConvNeXt-T-s128M", "ViT-S-32-s1.28B"])
def test_snippet_builds_the_model(name: str) -> None:
    """The snippet, run as pasted, builds the zoo's architecture with open_clip (random weights)."""
    registry = zoo.load()
    entry = registry.get(name)
    scope: dict[str, Any] = {}
    exec(render.open_clip_snippet(registry, entry), scope)  # noqa: S102 - our own generated code
    model = scope["model"]
    assert model.visual.image_size in (entry.image_size, (entry.image_size,) * 2)
    assert model.token_embedding.embedding_dim == entry.text_width
    assert len(model.transformer.resblocks) == entry.text_depth
    tokens = scope["tokenizer"](["a photo of a cat"])
    assert tuple(tokens.shape) == (1, 77)


def test_zoo_text_is_never_read_as_markup(run: Run, zoo_copy: Any) -> None:
    text = zoo_copy.read_text()
    zoo_copy.write_text(
        text.replace("released; the repo's file list is not yet confirmed", "see [/x] and [red]notes[/red]")
    )
    result = run("show", "ViTamin-XL-256-s13.3B", "--zoo", str(zoo_copy))
    assert result.exit_code == 0, result.stderr
    assert "see [/x] and [red]notes[/red]" in result.stdout
