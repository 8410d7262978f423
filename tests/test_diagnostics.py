"""Diagnostics through one path: library code never prints (it reports through `vitamin_cli.report`, which a
Python user can silence), a failure is named for what failed (every HTTP status the server's, never the
disk's), and no URL is shown with its credentials."""

from __future__ import annotations

import ast
import logging
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vitamin_cli import report
from vitamin_cli.errors import VitaminError, scrub
from vitamin_cli.hub import remote

PACKAGE = Path(__file__).resolve().parent.parent / "vitamin_cli"
# What prints for the user: the commands, the views, the CLI's root, stdout and stderr themselves, and the one
# path of library diagnostics.
SPEAKS = ("commands", "views", "cli.py", "console.py", "report.py")


def prints(source: str) -> list[int]:
    """Lines that print, write to sys.stdout or sys.stderr, or warn through `warnings`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
            found.append(node.lineno)
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if (node.value.id, node.attr) in (("sys", "stderr"), ("sys", "stdout"), ("warnings", "warn")):
                found.append(node.lineno)
    return found


def test_library_code_never_prints() -> None:
    offenders = [
        f"{path.relative_to(PACKAGE)}:{line}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.relative_to(PACKAGE).parts[0] not in SPEAKS
        for line in prints(path.read_text())
    ]
    assert offenders == [], "report through vitamin_cli.report instead: " + ", ".join(offenders)


def test_the_check_sees_a_print() -> None:
    assert prints("import sys\nprint('x')\nsys.stderr.write('y')\n") == [2, 3]


def test_warnings_and_notes_reach_stderr_and_can_be_silenced(capsys: pytest.CaptureFixture[str]) -> None:
    report.warn("the cache is odd at http://me:s3cret@mirror/x", hint="look at it")
    report.note("pulling something")
    assert capsys.readouterr().err == (
        "warning: the cache is odd at http://***@mirror/x\nhint: look at it\nnote: pulling something\n"
    )
    logger = logging.getLogger("vitamin_cli")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        report.warn("quiet now")
        report.note("and this")
    finally:
        logger.setLevel(level)
    assert capsys.readouterr().err == ""


def failed(status: int, url: str) -> Exception:
    """An HTTP failure as huggingface_hub raises it: with the response and the request it answered."""
    error = Exception("Client error")
    error.response = SimpleNamespace(status_code=status, request=SimpleNamespace(url=url))  # type: ignore[attr-defined]
    return error


WANTED = remote.HubFile("org/some-model", "pytorch_model.bin")
URL = "http://user:s3cret@mirror.example:8080/org/some-model/resolve/main/pytorch_model.bin"


@given(status=st.integers(min_value=400, max_value=599), got=st.sampled_from(["", " after 1.0 MiB of 3.0 MiB"]))
def test_every_http_status_is_the_servers_error(status: int, got: str) -> None:
    err = remote.failure(failed(status, URL), WANTED, URL, "Model", got)
    said = f"{err.message}\n{err.hint}"
    assert err.message.startswith(f"Model: HTTP {status} from mirror.example:8080")
    assert err.hint
    for wrong in ("disk", "cannot write", "the cache", "s3cret", "Exception", "Error"):
        assert wrong not in said, (status, said)
    if status in (404, 410):
        assert "org/some-model/pytorch_model.bin" in err.message
    if status in (401, 403):
        assert "HF_TOKEN" in err.hint
    if status == 429 or status >= 500:
        assert "again" in err.hint


def test_a_failure_from_another_host_names_that_host() -> None:
    cdn = "https://cdn.example/blobs/abc?signature=1"
    err = remote.failure(failed(403, cdn), WANTED, URL, "Model")
    assert err.message.startswith("Model: HTTP 403 from cdn.example:")  # the link it was sent to, not the Hub
    assert "expired" in (err.hint or "")


@given(
    user=st.text(st.characters(blacklist_characters="/@ \n\t\r", min_codepoint=33, max_codepoint=126), min_size=1),
    password=st.text(st.characters(blacklist_characters="/@ \n\t\r", min_codepoint=33, max_codepoint=126), min_size=4),
)
def test_credentials_in_a_url_never_reach_a_message(user: str, password: str) -> None:
    url = f"https://{user}:{password}@host.example/path"
    err = VitaminError(f"cannot reach {url}", hint=f"check HF_ENDPOINT={url}")
    assert f"{password}@" not in str(err) and "https://***@host.example/path" in str(err)
    assert scrub(f"x://{user}:{password}@host and more") == "x://***@host and more"


@pytest.mark.parametrize("err", [ValueError(""), KeyError("k"), RuntimeError("went wrong")])
def test_a_failure_is_described_in_words_never_by_its_class(err: Exception) -> None:
    said = remote.describe(err)
    assert type(err).__name__ not in said and said
