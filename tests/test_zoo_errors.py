"""A broken zoo file fails with its file, line and field, exit code 2, and never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import ZOO_YAML, Run

from vitamin_cli import zoo
from vitamin_cli.errors import ZooFileError

ORIGINAL = ZOO_YAML.read_text(encoding="utf-8")


def line_of(text: str, needle: str, after: str | None = None) -> int:
    """1-based line of the first `needle` (below the first line holding `after`, if given)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if after in line) if after else 0
    return next(i for i in range(start, len(lines)) if needle in lines[i]) + 1


def broken(path: Path, old: str, new: str, count: int = 1) -> str:
    assert old in ORIGINAL, old
    text = ORIGINAL.replace(old, new, count)
    path.write_text(text, encoding="utf-8")
    return text


FIRST_MODEL = "  - name: ViT-S-32-s128M\n"
CASES = [
    # (id, old, new, field, problem, line of)
    ("yaml-syntax", "    imagenet: 32.1\n", "    imagenet: [32.1\n", None, "invalid YAML", None),
    ("unknown-key", "    avg38: 34.1\n", "    avg38: 34.1\n    avg39: 1.0\n", "avg39", "unknown field", "avg39:"),
    ("missing-field", "    vtab: 35.8\n", "", "vtab", "missing", "- name: ViT-S-32-s128M"),
    ("non-numeric", "    imagenet: 32.1\n", "    imagenet: high\n", "imagenet", "expected a number", "imagenet: high"),
    ("bool-metric", "    imagenet: 32.1\n", "    imagenet: yes\n", "imagenet", "expected a number", "imagenet: yes"),
    ("percent-range", "    imagenet: 32.1\n", "    imagenet: 132.1\n", "imagenet", "between 0 and 100", "132.1"),
    ("negative", "    macs_image_g: 1.12\n", "    macs_image_g: -1.12\n", "macs_image_g", "at least 0", "-1.12"),
    ("duplicate-key", "    vtab: 35.8\n", "    vtab: 35.8\n    vtab: 35.9\n", "vtab", "appears twice", "vtab: 35.9"),
    ("bad-size", "    size: S\n", "    size: M\n", "size", "expected one of", "size: M"),
    ("bad-family", "    family: vit\n", "    family: resnet\n", "family", "expected one of", "family: resnet"),
    ("bad-samples", "    seen_samples: 128M\n", "    seen_samples: lots\n", "seen_samples", "sample count", "lots"),
    ("bad-int", "    image_size: 224\n", "    image_size: 224.5\n", "image_size", "whole number", "224.5"),
    (
        "no-weights-note",
        "    weights_note: no public checkpoint yet (the authors say more will come); "
        "the seed's link is a placeholder\n",
        "",
        "weights_note",
        "why there are no weights",
        "weights: null",
    ),
    ("patches", "    num_patches: 576\n", "    num_patches: 577\n", "num_patches", "do not match image_size", "577"),
    (
        "unsafe-filename",
        "filename: pytorch_model.bin",
        "filename: ../../etc/passwd",
        "weights.filename",
        "relative file path",
        "../../etc/passwd",
    ),
    (
        "absolute-filename",
        "filename: pytorch_model.bin",
        "filename: /etc/passwd",
        "weights.filename",
        "relative file path",
        "/etc/passwd",
    ),
    ("bad-repo", "repo: jienengchen/ViTamin-S,", "repo: ViTamin-S,", "weights.repo", "org/name", "repo: ViTamin-S,"),
    ("bad-sha", "sha256: null", "sha256: abc", "weights.sha256", "64 lower-case hex", "sha256: abc"),
    (
        "weights-key",
        "size_bytes: null}",
        "size_bytes: null, mirror: x}",
        "weights.mirror",
        "unknown field",
        "mirror: x",
    ),
    # names that become paths: checked against the Hub's own rules, ASCII, no trailing newline
    (
        "repo-newline",
        "repo: jienengchen/ViTamin-S,",
        'repo: "jienengchen/ViTamin-S\\n",',
        "weights.repo",
        "org/name",
        None,
    ),
    ("repo-unicode", "repo: jienengchen/ViTamin-S,", "repo: jienengchen/ViTamín-S,", "weights.repo", "org/name", None),
    ("repo-dashes", "repo: jienengchen/ViTamin-S,", "repo: jienengchen/ViTamin--S,", "weights.repo", "'--'", None),
    ("file-nul", "filename: pytorch_model.bin", 'filename: "model\\0.bin"', "weights.filename", "control", None),
    ("file-long", "filename: pytorch_model.bin", f"filename: {'m' * 256}.bin", "weights.filename", "255 bytes", None),
    ("name-newline", "  - name: ViT-S-32-s128M\n", '  - name: "ViT-S-32-s128M\\n"\n', "name", "expected a name", None),
    ("arch-slash", "    arch: ViT-S-32\n", "    arch: ../../ViT-S-32\n", "arch", "architecture name", None),
    ("arch-size", "    arch: ViTamin-XL-384\n", "    arch: ConvNeXt-T  # 224 px\n", "arch", "built at 224 px", "# 224"),
    ("version", "version: 1\n", "version: 2\n", "version", "expected 1", "version: 2"),
    ("top-key", "version: 1\n", "version: 1\nextra: true\n", "extra", "unknown field", "extra: true"),
]


@pytest.mark.parametrize(
    ("old", "new", "field", "problem", "needle"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_broken_zoo_names_file_line_and_field(
    zoo_copy: Path, old: str, new: str, field: str | None, problem: str, needle: str | None
) -> None:
    text = broken(zoo_copy, old, new)
    with pytest.raises(ZooFileError) as caught:
        zoo.load(zoo_copy)
    err = caught.value
    assert err.exit_code == 2
    assert err.path == str(zoo_copy)
    assert err.field == field
    assert problem in err.message
    if needle is not None:
        assert err.line == line_of(text, needle), err.message
    else:
        assert err.line is not None
    assert err.message.startswith(f"{zoo_copy}:{err.line}: ")


def test_duplicate_name(zoo_copy: Path) -> None:
    text = broken(zoo_copy, "  - name: ViT-S-16-s128M\n", "  - name: vit-s-32-S128M\n")
    with pytest.raises(ZooFileError) as caught:
        zoo.load(zoo_copy)
    assert caught.value.field == "name"
    assert caught.value.line == line_of(text, "name: vit-s-32-S128M")
    assert "already a name, alias or repo of 'ViT-S-32-s128M'" in caught.value.message


def test_duplicate_alias_names_the_alias_line(zoo_copy: Path) -> None:
    text = broken(zoo_copy, "    aliases: [ViTamin-B]\n", "    aliases: [ViTamin-S]\n")
    with pytest.raises(ZooFileError) as caught:
        zoo.load(zoo_copy)
    assert caught.value.field == "aliases"
    assert caught.value.line == line_of(text, "aliases: [ViTamin-S]", after="name: ViTamin-B-s1.28B")
    assert "'ViTamin-S' is already a name, alias or repo of 'ViTamin-S-s1.28B'" in caught.value.message


def test_alias_repeating_the_models_own_name(zoo_copy: Path) -> None:
    broken(zoo_copy, "    aliases: [ViTamin-B]\n", "    aliases: [ViTamin-B, vitamin-b]\n")
    with pytest.raises(ZooFileError, match="already its name or alias") as caught:
        zoo.load(zoo_copy)
    assert caught.value.field == "aliases"


def test_duplicate_repo_names_the_weights(zoo_copy: Path) -> None:
    text = broken(zoo_copy, "repo: jienengchen/ViTamin-B,", "repo: jienengchen/ViTamin-S,")
    with pytest.raises(ZooFileError) as caught:
        zoo.load(zoo_copy)
    assert caught.value.field == "weights.repo"
    assert caught.value.line == line_of(text, "repo: jienengchen/ViTamin-S,", after="name: ViTamin-B-s1.28B")


def test_alias_may_not_shadow_another_models_repo(zoo_copy: Path) -> None:
    broken(zoo_copy, "    aliases: [ViTamin-B]\n", "    aliases: [ViTamin-B, ViTamin-XL-384px]\n")
    with pytest.raises(ZooFileError, match="ViTamin-XL-384-s41B"):
        zoo.load(zoo_copy)


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("    imagenet: 32.1\n", "    imagenet: =\n", "imagenet"),
        ("    imagenet: 32.1\n", "    imagenet: !foo 32.1\n", "imagenet"),
        ("    imagenet: 32.1\n", "    imagenet: !!python/object:os.system {}\n", "imagenet"),
        ("    aliases: [ViTamin-B]\n", "    aliases: !foo [ViTamin-B]\n", "aliases"),
        ("    embed_dim: 768\n", "    embed_dim: &e [1, *e]\n", "architectures.ViT-L-32.embed_dim"),
        ("version: 1\n", "version: true\n", "version"),
        ("version: 1\n", "version: 1.0\n", "version"),
        ("    params_image_m: 21.81\n", "    params_image_m: .inf\n", "params_image_m"),
        ("    seen_samples: 128M\n", "    seen_samples: 0M\n", "seen_samples"),
        ("  - name: ViT-S-16-s128M\n", '  - name: " ViT-S-16-s128M"\n', "name"),
        ("  - name: ViT-S-16-s128M\n", "  - name: ViT-S-[16]-s128M\n", "name"),
        ("  - name: ViT-S-16-s128M\n", "  - name: ViT-S-16-[red]s128M\n", "name"),
        ("    aliases: [ViTamin-B]\n", "    aliases: [ViTamin B]\n", "aliases"),
        ("    avg38: 34.1\n", "    avg38: 34.1\n    [a, b]: 1\n", None),
        # values YAML's own constructors fail on, or that are not plain data
        ("  - name: ViT-S-16-s128M\n", "  - name: 2020-13-45\n", "name"),
        ("  - name: ViT-S-16-s128M\n", "  - name: 2020-01-01\n", "name"),
        ("    aliases: [ViTamin-B]\n", "    aliases: [2020-13-45]\n", "aliases"),
        ("    params_image_m: 21.81\n", "    params_image_m: !!float abc\n", "params_image_m"),
        ("    params_image_m: 21.81\n", "    params_image_m: !!bool abc\n", "params_image_m"),
        ("    params_image_m: 21.81\n", "    params_image_m: !!int abc\n", "params_image_m"),
        ("    params_image_m: 21.81\n", "    params_image_m: 1" + "0" * 400 + "\n", "params_image_m"),
        ("    params_image_m: 21.81\n", "    params_image_m: 1" + "1" * 5000 + "\n", "params_image_m"),
        ("    embed_dim: 768\n", "    embed_dim: !!binary aGVsbG8=\n", "architectures.ViT-L-32.embed_dim"),
        ("    embed_dim: 768\n", "    embed_dim: 2020-01-01\n", "architectures.ViT-L-32.embed_dim"),
        (
            "    vision_cfg: {image_size: 224, layers: 24, width: 1024, patch_size: 32}\n",
            "    vision_cfg: !!set {a, b}\n",
            "architectures.ViT-L-32.vision_cfg",
        ),
    ],
)
def test_odd_yaml_is_a_zoo_error_not_a_crash(zoo_copy: Path, old: str, new: str, field: str | None) -> None:
    text = broken(zoo_copy, old, new)
    with pytest.raises(ZooFileError) as caught:
        zoo.load(zoo_copy)
    assert caught.value.field == field
    assert caught.value.line == line_of(text, new.strip().splitlines()[-1])


@pytest.mark.parametrize("special", ["/dev/zero", "/dev/null", "."])
def test_not_a_regular_file(run: Run, special: str) -> None:
    result = run("ls", "--zoo", special)
    assert result.exit_code == 2
    assert "not a regular file" in result.stderr


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ZooFileError, match="cannot read"):
        zoo.load(tmp_path / "nope.yaml")


@pytest.mark.parametrize("content", ["", "- a\n- b\n", "version: 1\nmodels: []\n", "\x00binary"])
def test_not_a_zoo(tmp_path: Path, content: str) -> None:
    path = tmp_path / "zoo.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ZooFileError):
        zoo.load(path)


def test_cli_reports_a_broken_zoo_without_traceback(run: Run, zoo_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = broken(zoo_copy, "    imagenet: 32.1\n", "    imagenet: high\n")
    line = line_of(text, "imagenet: high")
    for args in (("ls", "--zoo", str(zoo_copy)), ("show", "ViTamin-S", "--zoo", str(zoo_copy))):
        result = run(*args)
        assert result.exit_code == 2
        assert f"{zoo_copy}:{line}: field 'imagenet'" in result.stderr
        assert "Traceback" not in result.stderr
        assert result.stdout == ""
    monkeypatch.setenv("VITAMIN_ZOO", str(zoo_copy))
    result = run("ls")
    assert result.exit_code == 2
    assert f"{zoo_copy}:{line}" in result.stderr


def test_another_registry_by_flag_and_environment(run: Run, zoo_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A lab's own zoo: one extra model, found by --zoo and by $VITAMIN_ZOO."""
    extra = ORIGINAL[ORIGINAL.index(FIRST_MODEL) : ORIGINAL.index("  - name: ViT-S-16-s128M")]
    zoo_copy.write_text(ORIGINAL + extra.replace("ViT-S-32-s128M", "Lab-ViT-S-32-s128M"), encoding="utf-8")
    assert "Lab-ViT-S-32-s128M" in run("ls", "--zoo", str(zoo_copy)).stdout
    assert "Lab-ViT-S-32-s128M" not in run("ls").stdout
    monkeypatch.setenv("VITAMIN_ZOO", str(zoo_copy))
    assert "Lab-ViT-S-32-s128M" in run("ls").stdout
    assert run("show", "lab-vit-s-32-s128m").exit_code == 0


def billion_laughs(levels: int = 12) -> str:
    """An architecture whose aliases expand to 10**levels values: a few hundred bytes of YAML."""
    lines = ['    a0: &a0 ["lol"]']
    lines += [f"    a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        ("    embed_dim: 768\n", "    embed_dim: 768\n    preprocess: 1\n" + billion_laughs(), "YAML aliases"),
        ("    embed_dim: 768\n", "    embed_dim: " + "[" * 200 + "1" + "]" * 200 + "\n", "nested more than"),
        ("    embed_dim: 768\n", "    embed_dim: " + "[" * 5000 + "1" + "]" * 5000 + "\n", "nest"),
    ],
    ids=["billion-laughs", "deep", "deeper-than-the-stack"],
)
def test_a_zoo_file_costs_bounded_work(zoo_copy: Path, run: Run, old: str, new: str, problem: str) -> None:
    """Alias bombs and deep nesting are refused quickly with the file and line, before anything expands them."""
    import time

    broken(zoo_copy, old, new)
    start = time.monotonic()
    result = run("ls", "--zoo", str(zoo_copy))
    assert time.monotonic() - start < 10
    assert result.exit_code == 2
    assert problem in result.stderr and f"{zoo_copy}:" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_huge_zoo_file_is_refused_unread(tmp_path: Path, run: Run) -> None:
    path = tmp_path / "huge.yaml"
    path.write_bytes(b"# " + b"x" * (9 * 2**20) + b"\n")
    result = run("ls", "--zoo", str(path))
    assert result.exit_code == 2
    assert "more than a zoo file may have" in result.stderr
