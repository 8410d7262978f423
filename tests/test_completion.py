"""Shell completion, through the protocol the shells' scripts speak: `vitamin` started with $_VITAMIN_COMPLETE
and the command line in the environment. Every request runs in a fresh interpreter, which must not import the
heavy libraries (completion runs at every Tab press), nor the commands that were not typed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ZOO_YAML, Run

from vitamin_cli.cli import COMMANDS
from vitamin_cli.eval import tasks
from vitamin_cli.models.device import DTYPES

HEAVY = ("torch", "open_clip", "timm", "huggingface_hub", "requests", "numpy", "ray")
REQUEST = (
    "import sys\n"
    "from vitamin_cli.cli import main\n"
    "try:\n"
    "    main()\n"
    "except SystemExit as done:\n"
    "    print('EXIT', done.code, file=sys.stderr)\n"
    f"print('HEAVY', sorted(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)\n"
    "print('COMMANDS', sorted(m.rpartition('.')[2] for m in sys.modules if m.startswith('vitamin_cli.commands.')"
    " and not m.endswith('_options')), file=sys.stderr)\n"
)
VISIBLE = [name for name, module in COMMANDS.items() if name == module]


def request(env: dict[str, str]) -> tuple[list[str], str]:
    """One completion request: the lines it prints, and its stderr (checked: no error, nothing heavy)."""
    result = subprocess.run(
        [sys.executable, "-c", REQUEST], env={**os.environ, **env}, capture_output=True, text=True, timeout=60
    )
    assert "EXIT 0" in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert "HEAVY []" in result.stderr, result.stderr
    return [line for line in result.stdout.splitlines() if line], result.stderr  # bash reads no line as none


def bash(line: str, env: dict[str, str] | None = None) -> list[str]:
    """What bash's completion function gets for `line` (the cursor at its end), as typer's bash script asks."""
    words = line.split(" ")
    found, _ = request(
        {"_VITAMIN_COMPLETE": "complete_bash", "COMP_WORDS": line, "COMP_CWORD": str(len(words) - 1), **(env or {})}
    )
    return found


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("vitamin ", VISIBLE),  # every command, not the alias `list`
        ("vitamin l", ["ls"]),
        ("vitamin li", ["list"]),  # the alias, once it is typed
        ("vitamin p", ["pull", "pin", "plot"]),
        ("vitamin eval --dtype ", list(DTYPES)),
        ("vitamin bench --tower ", ["image", "text", "both"]),
        ("vitamin ls --size ", ["S", "B", "L", "L2", "XL"]),
        ("vitamin ls --family v", ["vit", "vitamin"]),
        ("vitamin ls --format ", ["table", "json", "csv", "markdown"]),
        ("vitamin show --format ", ["table", "json"]),
        ("vitamin tasks --suite ", ["imagenet", "avg38", "dist_shift", "vtab", "retrieval"]),
        ("vitamin eval --ray ", ["local", "auto"]),
        ("vitamin ls --reverse --so", ["--sort"]),
        ("vitamin ls --sort imagenet --reverse --so", []),  # an option given once is not offered again
        ("vitamin ls --sort i", ["images_s", "image_size", "imagenet", "images_per_s", "imagenet_measured"]),
        ("vitamin plot --y d", ["dist_shift"]),
        ("vitamin list --rev", ["--reverse"]),
    ],
)
def test_completes_commands_options_and_their_values(line: str, expected: list[str]) -> None:
    assert bash(line) == expected


def test_devices() -> None:
    """cuda:N for each GPU CUDA would see. Bash splits `cuda:0` at the colon and replaces what follows it."""
    assert bash("vitamin bench --device ", env={"CUDA_VISIBLE_DEVICES": ""}) == ["cpu", "cuda"]
    assert bash("vitamin eval --device ", env={"CUDA_VISIBLE_DEVICES": "0,1"}) == ["cpu", "cuda", "cuda:0", "cuda:1"]
    assert bash("vitamin bench --device cuda :", env={"CUDA_VISIBLE_DEVICES": "0,1"}) == ["0", "1"]
    assert bash("vitamin bench --device cuda : 1", env={"CUDA_VISIBLE_DEVICES": "0,1"}) == ["1"]
    assert bash("vitamin bench --device cuda : 1 --dt") == ["--dtype"]  # `cuda:1` parsed as one value
    assert bash("vitamin bench --device ", env={"CUDA_VISIBLE_DEVICES": "-1"}) == ["cpu", "cuda"]
    zsh, _ = request(
        {
            "_VITAMIN_COMPLETE": "complete_zsh",
            "_TYPER_COMPLETE_ARGS": "vitamin bench --device cuda:",
            "CUDA_VISIBLE_DEVICES": "3,4",
        }
    )
    assert zsh == ['_arguments \'*: :(("cuda\\\\:0"', '"cuda\\\\:1"))\'']


def test_options_of_a_command() -> None:
    found = bash("vitamin eval --")
    for option in ("--task", "--suite", "--device", "--dtype", "--batch-size", "--zoo", "--json", "--help"):
        assert option in found
    assert "--tower" not in found  # bench's


def test_model_names() -> None:
    from vitamin_cli import zoo

    models = zoo.load().models
    names = [n for m in models for n in (m.name, *m.aliases)]
    assert bash("vitamin eval ViTamin-XL") == [n for n in names if n.startswith("ViTamin-XL")]
    assert "ViTamin-L" in bash("vitamin show ViTamin-L")  # an alias
    assert "ViT-B-16-s1.28B" in bash("vitamin compare ViTamin-S ViT-B-")
    # those already given are not offered again
    assert "ViTamin-S" not in bash("vitamin compare ViTamin-S ViTamin-S")
    assert len(bash("vitamin ls ")) == len(names)


def test_model_names_of_another_zoo(zoo_copy: Path) -> None:
    zoo_copy.write_text(zoo_copy.read_text().replace("aliases: [ViTamin-S]", "aliases: [ViTamin-S, Lab-Small]"))
    assert bash("vitamin ls Lab") == []
    assert bash(f"vitamin ls --zoo {zoo_copy} Lab") == ["Lab-Small"]
    assert bash("vitamin bench Lab", env={"VITAMIN_ZOO": str(zoo_copy)}) == ["Lab-Small"]
    home = zoo_copy.parent  # `--zoo ~/zoo.yaml` reaches completion with its tilde: vitamin expands it
    assert bash("vitamin ls --zoo ~/zoo.yaml Lab", env={"HOME": str(home)}) == ["Lab-Small"]
    zoo_copy.write_text("models: [")  # a broken zoo completes nothing, and says nothing
    assert bash("vitamin ls ViT", env={"VITAMIN_ZOO": str(zoo_copy)}) == []
    assert ZOO_YAML.exists()


def test_task_keys() -> None:
    keys = [t.key for t in tasks.load().tasks]
    assert bash("vitamin eval --task ") == keys
    assert bash("vitamin pull --task vtab/c") == [k for k in keys if k.startswith("vtab/c")]
    assert tasks.keys() == keys  # the light reading of tasks.yaml finds what the validating one does


def test_a_file_option_leaves_completion_to_the_shell() -> None:
    assert bash("vitamin ls --zoo zo") == []  # empty: bash's `-o default` then completes file names


def test_only_the_command_typed_is_built() -> None:
    _, stderr = request(
        {"_VITAMIN_COMPLETE": "complete_bash", "COMP_WORDS": "vitamin eval --dtype ", "COMP_CWORD": "3"}
    )
    assert "COMMANDS ['eval']" in stderr, stderr


def test_zsh_and_fish() -> None:
    zsh, _ = request({"_VITAMIN_COMPLETE": "complete_zsh", "_TYPER_COMPLETE_ARGS": "vitamin eval --dtype "})
    assert zsh == ['_arguments \'*: :(("bf16"', '"fp16"', '"fp32"))\'']
    zsh, _ = request({"_VITAMIN_COMPLETE": "complete_zsh", "_TYPER_COMPLETE_ARGS": "vitamin ta"})
    assert len(zsh) == 1 and zsh[0].startswith('_arguments \'*: :(("tasks":"List the evaluation tasks')
    fish, _ = request(
        {
            "_VITAMIN_COMPLETE": "complete_fish",
            "_TYPER_COMPLETE_FISH_ACTION": "get-args",
            "_TYPER_COMPLETE_ARGS": "vitamin show ViTamin-XL-384",
        }
    )
    assert fish[0].split("\t")[0] == "ViTamin-XL-384-s13.3B" and "384 px" in fish[0]


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_in_bash_itself(tmp_path: Path) -> None:
    """The script `--show-completion` prints, sourced into bash, with `vitamin` this checkout."""
    (tmp_path / "vitamin").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m vitamin_cli "$@"\n')
    (tmp_path / "vitamin").chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}"}
    script = subprocess.run(
        ["vitamin"], env={**env, "_VITAMIN_COMPLETE": "source_bash"}, capture_output=True, text=True, check=True
    ).stdout
    (tmp_path / "completion.sh").write_text(script)
    shell = (
        f"source {tmp_path / 'completion.sh'}\n"
        "COMP_WORDS=(vitamin bench --dtype ''); COMP_CWORD=3; _vitamin_completion vitamin\n"
        'echo "${COMPREPLY[*]}"\n'
        "COMP_WORDS=(vitamin ve); COMP_CWORD=1; _vitamin_completion vitamin\n"
        'echo "${COMPREPLY[*]}"\n'
    )
    result = subprocess.run(["bash", "--norc", "-c", shell], env=env, capture_output=True, text=True, timeout=60)
    assert result.stdout.splitlines() == [" ".join(DTYPES), "verify"], result.stderr


def test_install_completion_into_a_home(tmp_path: Path) -> None:
    """`--install-completion bash` (the shell given, not detected) writes the script and sources it from
    ~/.bashrc: here a temporary home."""
    env = {**os.environ, "HOME": str(tmp_path), "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "vitamin_cli", "--install-completion", "bash"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    installed = tmp_path / ".bash_completions" / "vitamin.sh"
    assert "_VITAMIN_COMPLETE=complete_bash" in installed.read_text()
    assert f"source '{installed}'" in (tmp_path / ".bashrc").read_text()


def test_root_help_offers_completion(run: Run) -> None:
    shown = run("--help").stdout
    assert "--install-completion" in shown and "--show-completion" in shown and "Shell completion" in shown


def test_a_cursor_position_that_is_not_a_number_is_no_traceback() -> None:
    found, _ = request({"_VITAMIN_COMPLETE": "complete_bash", "COMP_WORDS": "vitamin pull ViT", "COMP_CWORD": "abc"})
    assert "ViTamin-L-224-s12.8B" not in found
