"""Property-based: whatever a zoo file or a command line holds, vitamin answers with exit code 0, 1 or 2 and
a message, never a traceback. Bounded numbers of examples keep the suite fast."""

from __future__ import annotations

import io
from contextlib import redirect_stderr, redirect_stdout

import pytest
from conftest import ZOO_YAML
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vitamin_cli import cli
from vitamin_cli.errors import ZooFileError
from vitamin_cli.zoo import schema as zoo_schema

ORIGINAL = ZOO_YAML.read_text(encoding="utf-8")
LINES = ORIGINAL.splitlines(keepends=True)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

yaml_scalars = st.one_of(
    st.text(max_size=30),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["~", "null", "yes", "&a x", "*a", "!!python/object:os.system {}", "[", "{a: [", "!foo 1", "'"]),
)


@SETTINGS
@given(st.text(max_size=400))
def test_any_text_is_a_zoo_or_a_zoo_error(text: str) -> None:
    try:
        zoo_schema.parse(text, "lab.yaml")
    except ZooFileError as err:
        assert err.exit_code == 2 and err.message.startswith("lab.yaml")


@SETTINGS
@given(st.integers(min_value=0, max_value=len(LINES) - 1), yaml_scalars, st.booleans())
def test_any_value_in_any_line_is_a_zoo_or_an_error_naming_its_line(index: int, value: object, replace: bool) -> None:
    """The real zoo with one line's value replaced (or one line inserted): a Zoo, or an error with a line."""
    line = LINES[index]
    key, colon, _ = line.partition(":")
    new = f"{key}: {value}\n" if colon and replace else f"{line}{key}: {value}\n"
    text = "".join(LINES[:index] + [new] + LINES[index + 1 :])
    try:
        zoo_schema.parse(text, "lab.yaml")
    except ZooFileError as err:
        assert err.line is not None or "YAML" in err.message or "empty" in err.message, err.message


def invoke(args: list[str]) -> tuple[int, str]:
    """`vitamin ARGS` in this process; any exception other than an exit is a failure of the test."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            cli.main(args)
            code = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 0
    return code, err.getvalue()


names = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["ViTamin-L", "vitamin-xl-384", "ViTamin-L*", "*", "[", "jienengchen/ViTamin-S", "../..", "-"]),
)
flags = st.lists(
    st.sampled_from(
        [
            ["--size", "L"],
            ["--size", "m"],
            ["--family", "vitamin"],
            ["--samples", "13.3B"],
            ["--samples", "x"],
            ["--resolution", "384"],
            ["--resolution", "-1"],
            ["--released"],
            ["--json"],
            ["--csv"],
            ["--markdown"],
            ["--format", "json"],
            ["--format", "yaml"],
            ["--sort", "imagenet"],
            ["--reverse"],
            ["--pulled"],
            ["--all"],
            ["--revision", "../x"],
            ["--cache-dir", "/"],
        ]
    ),
    max_size=3,
)


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """No Hub: a port nothing listens on, and no pause between tries."""
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("VITAMIN_RETRY_WAIT", "0")


@SETTINGS
@given(st.sampled_from(["ls", "show", "verify", "rm", "compare", "pull", "cache"]), st.lists(names, max_size=3), flags)
def test_any_command_line_exits_0_1_or_2(
    offline: None, command: str, given_names: list[str], given_flags: list
) -> None:  # type: ignore[type-arg]
    args = [command, *given_names, *(part for flag in given_flags for part in flag)]
    code, stderr = invoke(args)
    assert code in (0, 1, 2), (args, code, stderr)
    assert "Traceback" not in stderr, (args, stderr)
    assert all(len(line) < 2000 for line in stderr.splitlines()), args
