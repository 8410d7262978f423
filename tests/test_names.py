"""The names users of open_clip, timm and the Hub type for a released model resolve to its row; the timm
names that map to no row say why."""

from __future__ import annotations

import pytest
from conftest import Run

from vitamin_cli import zoo
from vitamin_cli.errors import UnknownModelError


@pytest.mark.parametrize(
    ("name", "row"),
    [
        ("ViTamin-L-224", "ViTamin-L-224-s12.8B"),  # a resolution's own name, beside open_clip's ViTamin-L
        ("vitamin-l-336", "ViTamin-L-336-s13B"),
        ("hf-hub:jienengchen/ViTamin-L-224px", "ViTamin-L-224-s12.8B"),  # open_clip's hf-hub: form
        ("HF-HUB:jienengchen/ViTamin-XL-384px", "ViTamin-XL-384-s41B"),
        ("jienengchen/ViTamin-S", "ViTamin-S-s1.28B"),
        ("vitamin_large_224.datacomp1b_clip", "ViTamin-L-224-s12.8B"),  # timm, with its tag
        ("vitamin_large_224", "ViTamin-L-224-s12.8B"),  # and without, where that tag is timm's default
        ("vitamin_large2_384", "ViTamin-L2-384-s13.3B"),
        ("vitamin_xlarge_256.datacomp1b_clip", "ViTamin-XL-256-s40B"),
        ("vitamin_small_224.datacomp1b_clip", "ViTamin-S-s1.28B"),
        ("vitamin_base_224.datacomp1b_clip", "ViTamin-B-s1.28B"),
    ],
)
def test_neighbours_names_resolve_to_the_row(name: str, row: str) -> None:
    assert zoo.get(name).name == row


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("vitamin_small_224", "LTT model, outside the zoo"),  # timm's default tag there is the LTT model
        ("vitamin_base_224", "LTT model, outside the zoo"),
        ("vitamin_base_224.datacomp1b_clip_ltt", "LTT model, outside the zoo"),
        ("vitamin_xlarge_336", "loads the 256 px weights upstream"),
        ("vitamin_xlarge_336.datacomp1b_clip", "loads the 256 px weights upstream"),
    ],
)
def test_timm_names_that_fit_no_row_say_why(name: str, why: str) -> None:
    with pytest.raises(UnknownModelError) as caught:
        zoo.get(name)
    assert why in (caught.value.hint or "")


def test_a_name_of_two_rows_is_not_guessed() -> None:
    """ViTamin-XL-384 at 13.3B and 41B samples: the stem fits both, so only the zoo's alias (open_clip's
    name, the 41B weights) decides, and a stem of the benchmarked rows at three scales resolves to none."""
    assert zoo.get("ViTamin-XL-384").name == "ViTamin-XL-384-s41B"
    with pytest.raises(UnknownModelError):
        zoo.get("ViT-B-32")  # ViT-B-32 at 128M, 512M and 1.28B samples


def test_the_cli_takes_them_too(run: Run) -> None:
    shown = run("show", "hf-hub:jienengchen/ViTamin-L-224px", "--json")
    assert shown.exit_code == 0, shown.stderr
    result = run("ls", "vitamin_large_256", "--json")
    assert result.exit_code == 0 and '"ViTamin-L-256-s13B"' in result.stdout
    refused = run("show", "vitamin_small_224")
    assert refused.exit_code == 2 and "LTT" in refused.stderr
