"""Every test runs with its own temporary home, cache and config folders, no colour and a wide terminal; the
session as a whole runs in a scratch home too (Ray's workers start with the session's environment), and ends
by checking that the real home and /tmp/ray are as they were."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hubserver import FaultProxy, build_repo, olah_server

from vitamin_cli import cli

ROOT = Path(__file__).resolve().parent.parent
ZOO_YAML = ROOT / "zoo.yaml"


def user_folders(home: Path) -> dict[str, str]:
    """Every variable that says where a user's caches and settings go, pointed into `home`."""
    return {
        "HOME": str(home),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "HF_HOME": str(home / "hf"),
        "MPLCONFIGDIR": str(home / ".config" / "matplotlib"),
        "TORCHINDUCTOR_CACHE_DIR": str(home / ".cache" / "inductor"),
        "TRITON_CACHE_DIR": str(home / ".cache" / "triton"),
    }


def _what_is_in(folder: Path, depth: int) -> set[str]:
    """The paths below a folder, `depth` levels deep (the names only: a read never counts as a change)."""
    found: set[str] = set()
    level = [folder]
    for _ in range(depth):
        nxt = []
        for current in level:
            try:
                children = list(current.iterdir())
            except OSError:
                continue
            found.update(str(c) for c in children)
            nxt += [c for c in children if c.is_dir() and not c.is_symlink()]
        level = nxt
    return found


@pytest.fixture(scope="session", autouse=True)
def untouched_home() -> Iterator[None]:
    """The session's environment points at a scratch home and Ray at a scratch temp folder (short: Ray's socket
    paths must stay under 108 bytes); at the end, the real home and /tmp/ray must hold what they held."""
    import tempfile

    real_home = Path(os.path.expanduser("~"))
    watched = [(real_home, 2), (real_home / ".cache", 3), (real_home / ".config", 2), (Path("/tmp/ray"), 1)]
    before = {str(folder): _what_is_in(folder, depth) for folder, depth in watched}
    scratch = Path(tempfile.mkdtemp(prefix="vt-"))
    given = {**user_folders(scratch / "home"), "RAY_TMPDIR": str(scratch / "ray")}
    saved = {name: os.environ.get(name) for name in given}
    os.environ.update(given)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        shutil.rmtree(scratch, ignore_errors=True)
    after = {str(folder): _what_is_in(folder, depth) for folder, depth in watched}
    changed = {folder: sorted(after[folder] ^ seen)[:5] for folder, seen in before.items() if after[folder] != seen}
    assert not changed, f"the tests wrote outside their temporary folders: {changed}"


@pytest.fixture(autouse=True)
def isolated_environment(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path_factory.mktemp("home")
    for var in ("VITAMIN_ZOO", "HF_ENDPOINT", "HF_TOKEN", "HF_HUB_OFFLINE", "FORCE_COLOR"):
        monkeypatch.delenv(var, raising=False)
    for var, value in user_folders(home).items():
        monkeypatch.setenv(var, value)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("TERM", "dumb")


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str


Run = Callable[..., Result]


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Run:
    """Run `vitamin ARGS...` in this process, as the console script does, and capture what it prints."""

    def invoke(*args: str) -> Result:
        capsys.readouterr()
        try:
            cli.main(list(args))
            code = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return invoke


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> Callable[[int], None]:
    """`terminal(80)`: what the commands print on stdout goes to a terminal 80 columns wide (COLUMNS, as a shell
    sets it), not to a pipe."""
    from vitamin_cli import console

    def at(width: int) -> None:
        monkeypatch.setattr(console, "_isatty", lambda stream: True)
        monkeypatch.setenv("COLUMNS", str(width))

    return at


@pytest.fixture
def zoo_copy(tmp_path: Path) -> Path:
    """A writable copy of the bundled zoo.yaml, for tests that break it."""
    path = tmp_path / "zoo.yaml"
    shutil.copy(ZOO_YAML, path)
    return path


# ---------------------------------------------------------------------------------------------------
# A real Hub-compatible server (olah) with the zoo's repos, behind a fault-injecting proxy


@dataclass
class Hub:
    url: str  # what HF_ENDPOINT points at: the proxy
    proxy: FaultProxy
    mirrors: Path
    files: dict[str, bytes]  # repo -> the checkpoint it serves
    commits: dict[str, str]  # repo -> commit on main


SMALL_REPO = "jienengchen/ViTamin-L-224px"  # ViTamin-L
BIG_REPO = "jienengchen/ViTamin-B"  # ViTamin-B
EMPTY_REPO = "jienengchen/ViTamin-XL-384px-s13B"  # ViTamin-XL-384-s13.3B: a repo without the checkpoint


@pytest.fixture(scope="session")
def hub_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    import random

    work = tmp_path_factory.mktemp("hub")
    rng = random.Random(7)
    files = {SMALL_REPO: rng.randbytes(3 * 2**20), BIG_REPO: rng.randbytes(24 * 2**20)}
    with olah_server(work) as (olah_url, mirrors):
        commits = {repo: build_repo(mirrors, repo, {"pytorch_model.bin": data}) for repo, data in files.items()}
        commits[EMPTY_REPO] = build_repo(mirrors, EMPTY_REPO, {})
        with FaultProxy(olah_url) as proxy:
            yield Hub(proxy.url, proxy, mirrors, files, commits)


@pytest.fixture
def hub(hub_server: Hub, monkeypatch: pytest.MonkeyPatch) -> Hub:
    """The server, with no faults armed, and the environment of the tests pointed at it."""
    hub_server.proxy.reset()
    monkeypatch.setenv("HF_ENDPOINT", hub_server.url)
    monkeypatch.setenv("VITAMIN_RETRY_WAIT", "0.05")
    return hub_server


def vitamin_process(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> Result:
    """Run `python -m vitamin_cli ARGS...` in a new process, as a user's shell would."""
    result = subprocess.run(
        [sys.executable, "-m", "vitamin_cli", *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Result(result.returncode, result.stdout, result.stderr)


def start_vitamin(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "vitamin_cli", *args],
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def put_in_cache(
    name: str,
    repo: str,
    filename: str,
    data: bytes,
    *,
    repo_type: str = "model",
    commit: str = "a" * 40,
    pulled_at: str = "2025-01-01T00:00:00+00:00",
) -> Path:
    """A file in the hub cache and the manifest, laid out and recorded as `vitamin pull` does (the manifest's own
    format, version 2, written as a pull writes it); returns its snapshot path."""
    import hashlib
    import json

    from vitamin_cli.hub.cache import RepoCache, hub_dir

    root = hub_dir()
    digest = hashlib.sha256(data).hexdigest()
    cache = RepoCache(root, repo, repo_type)
    cache.blob(digest).parent.mkdir(parents=True, exist_ok=True)
    cache.blob(digest).write_bytes(data)
    path = cache.link(commit, filename, digest, "main")
    manifest = root.with_name(root.name + ".vitamin-manifest.json")
    saved: dict[str, Any] = json.loads(manifest.read_text()) if manifest.exists() else {"version": 2, "files": []}
    entry: dict[str, object] = {"name": name, "repo": repo, "repo_type": repo_type, "revision": commit}
    entry["filename"] = filename
    keys = list(entry)
    entry |= {"size_bytes": len(data), "sha256": digest, "etag": digest, "pulled_at": pulled_at, "adopted": False}
    saved["files"] = [f for f in saved["files"] if [f[k] for k in keys] != [entry[k] for k in keys]]
    saved["files"].append(entry)
    manifest.write_text(json.dumps(saved))
    return path


@pytest.fixture
def mount(tmp_path: Path) -> Iterator[Callable[[str], Path]]:
    """`mount(options)`: a tmpfs mounted for the test (a read-only or a small file system; root can mount, and
    the test is skipped where it cannot), unmounted after it."""
    mounted: list[Path] = []

    def make(options: str) -> Path:
        point = tmp_path / f"fs{len(mounted)}"
        point.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)], capture_output=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
        mounted.append(point)
        return point

    yield make
    for point in mounted:
        subprocess.run(["umount", "-l", str(point)], check=False)


# ---------------------------------------------------------------------------------------------------
# A tiny architecture, for tests that build, load or run models


TINY_ARCHITECTURE = """\
  Tiny:
    embed_dim: 32
    vision_cfg: {image_size: 32, layers: 2, width: 64, patch_size: 16, head_width: 32}
    text_cfg: {context_length: 77, vocab_size: 49408, width: 32, heads: 2, layers: 2}
"""


def tiny_model(
    name: str,
    *,
    samples: str = "1M",
    arch: str = "Tiny",
    imagenet: float = 1.0,
    params: tuple[float, float] = (0.1, 1.6),
    weights: str = "null\n    weights_note: made up for the tests",
) -> str:
    """One model entry of a zoo file, in the tiny architecture (or another one named by `arch`)."""
    return f"""\
  - name: {name}
    encoder: Tiny/16
    family: vit
    size: S
    schedule: benchmark
    image_size: 32
    text_depth: 2
    text_width: 32
    seen_samples: {samples}
    params_image_m: {params[0]}
    params_text_m: {params[1]}
    macs_image_g: 0.0
    macs_text_g: 0.0
    imagenet: {imagenet}
    avg38: 1.0
    dist_shift: 1.0
    vtab: 1.0
    retrieval: 1.0
    arch: {arch}
    weights: {weights}
"""


def tiny_zoo_text(models: Sequence[str], architectures: str = TINY_ARCHITECTURE) -> str:
    return "version: 1\narchitectures:\n" + architectures + "models:\n" + "".join(models)


@pytest.fixture
def tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A zoo with two tiny models (one released) and a random checkpoint of the architecture."""
    import torch

    from vitamin_cli import zoo
    from vitamin_cli.models import arch

    path = tmp_path / "zoo.yaml"
    released = "{repo: test/tiny-clip-eval, filename: pytorch_model.bin}"
    path.write_text(tiny_zoo_text([tiny_model("Tiny-s1M"), tiny_model("Tiny-s2M", samples="2M", weights=released)]))
    monkeypatch.setenv("VITAMIN_ZOO", str(path))
    registry = zoo.load(path)
    torch.manual_seed(0)
    model = arch.build(arch.config(registry, registry.get("Tiny-s1M")))
    checkpoint = tmp_path / "tiny.pt"
    torch.save(model.state_dict(), checkpoint)
    return path, checkpoint
