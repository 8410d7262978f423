"""Shell completion, typer's (after click's): the script that `vitamin --install-completion` installs runs
`vitamin` with $_VITAMIN_COMPLETE set and the command line in the environment. These pieces let `cli.main`
build only the command being typed, complete the hidden alias only when nothing else fits, and give bash
values with colons (`cuda:0`). Nothing here imports more than typer."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from typer._click import Context
from typer._click.shell_completion import CompletionItem, add_completion_class, split_arg_string
from typer._completion_classes import BashComplete
from typer.core import TyperGroup

COMPLETE_VAR = "_VITAMIN_COMPLETE"  # set by the completion script when the shell asks for completions


class RootGroup(TyperGroup):
    """The root command: an alias (`list`) completes only when no command does (`vitamin li<Tab>`)."""

    def shell_complete(self, ctx: Context, incomplete: str) -> list[CompletionItem]:
        found = super().shell_complete(ctx, incomplete)
        if incomplete and not incomplete.startswith("-") and not any(item.value in self.commands for item in found):
            found += [
                CompletionItem(name, help=command.get_short_help_str())
                for name, command in self.commands.items()
                if command.hidden and name.startswith(incomplete)
            ]
        return found

    def _main_shell_completion(self, ctx_args: Any, prog_name: str, complete_var: str | None = None) -> None:
        add_completion_class(BashWithColons, "bash")  # over typer's, which it registers when it builds the app
        super()._main_shell_completion(ctx_args, prog_name, complete_var)


class BashWithColons(BashComplete):
    """Bash splits words at colons for completion: `--device cuda:0` arrives as `cuda`, `:`, `0`, and bash
    replaces only what follows the last colon. The words are joined again before they are parsed (`cuda:0`),
    and each completion is given from after the colon (`0` for `cuda:0`), as bash-completion's own do."""

    def get_completion_args(self) -> tuple[list[str], str]:
        try:
            args, incomplete = super().get_completion_args()
        except ValueError:  # COMP_CWORD that is not a number: nothing to complete, and no traceback
            return [], ""
        words = rejoin_colons(args + [incomplete] if incomplete else args)
        return (words[:-1], words[-1]) if incomplete else (words, "")

    def complete(self) -> str:
        args, incomplete = self.get_completion_args()
        cut = incomplete.rfind(":") + 1
        return "\n".join(item.value[cut:] for item in self.get_completions(args, incomplete))


def rejoin_colons(words: Sequence[str]) -> list[str]:
    """`cuda`, `:`, `0` -> `cuda:0`: a lone colon joins the words on either side of it."""
    joined: list[str] = []
    glue = False
    for word in words:
        if joined and (word == ":" or glue):
            joined[-1] += word
        else:
            joined.append(word)
        glue = word == ":"
    return joined


def command_asked(args: Sequence[str], commands: Sequence[str]) -> str | None:
    """The command to build: the first word given; while a shell asks for completions, the first word of the
    command line it sends, once complete (not the word being completed)."""
    words = _completion_words()
    if words is None:
        words = list(args)
    return words[0] if words and words[0] in commands else None


def _completion_words() -> list[str] | None:
    """The words typed before the one being completed (without `vitamin`), as typer's completion classes read
    them; None when no shell asks for completions."""
    instruction = os.environ.get(COMPLETE_VAR, "")
    if not instruction.startswith("complete_"):
        return None
    if instruction == "complete_bash":
        try:
            words, cursor = split_arg_string(os.environ.get("COMP_WORDS", "")), int(os.environ.get("COMP_CWORD", ""))
        except ValueError:
            return []
        return words[1:cursor]
    line = os.environ.get("_TYPER_COMPLETE_ARGS", "")  # zsh, fish, PowerShell: the line up to the cursor
    words = split_arg_string(line)[1:]
    if "_TYPER_COMPLETE_WORD_TO_COMPLETE" in os.environ:  # PowerShell says which word is being completed
        in_word = bool(os.environ["_TYPER_COMPLETE_WORD_TO_COMPLETE"])
    else:
        in_word = not line.endswith(" ")
    return words[:-1] if words and in_word else words
