"""The optional dependencies, and how to install them where vitamin was installed from.

vitamin is installed from its source checkout (README.md) or from a wheel, not from a package index, so a
hint never says `pip install vitamin-zoo[...]`: it names the checkout pip recorded, or else the packages.
"""

from __future__ import annotations

import json
from importlib import metadata
from urllib.parse import unquote, urlsplit

DISTRIBUTION = "vitamin-zoo"
# Import names of the optional dependencies, by the extra of pyproject.toml that installs them.
EXTRAS = {
    "torch": "torch",
    "torchvision": "torch",
    "open_clip": "torch",
    "timm": "torch",
    "matplotlib": "plot",
    "plotext": "plot",
    "ray": "ray",
}


def extra_of(module: str | None) -> str | None:
    """The extra that installs a module (`open_clip.factory` -> `torch`), or None for a core dependency."""
    return EXTRAS.get((module or "").split(".")[0])


def install_command(extra: str) -> str:
    """A pip command that adds an extra to this installation of vitamin."""
    checkout, editable = _source()
    if checkout is not None:
        return f'pip install {"-e " if editable else ""}"{checkout}[{extra}]"'
    packages = requirements(extra)
    if packages:
        return "pip install " + " ".join(f'"{p}"' for p in packages)
    return f'pip install ".[{extra}]" (in a checkout of vitamin)'


def requirements(extra: str) -> list[str]:
    """What an extra installs, as pip requirements, from the installed package's metadata."""
    try:
        declared = metadata.requires(DISTRIBUTION) or []
    except metadata.PackageNotFoundError:
        return []
    found = []
    for line in declared:
        requirement, _, marker = line.partition(";")
        if marker.replace('"', "'").replace(" ", "") == f"extra=='{extra}'":
            found.append(requirement.strip())
    return found


def version() -> str:
    """vitamin's version, from the installed package's metadata."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "unknown (running from a source tree that is not installed)"


def _source() -> tuple[str | None, bool]:
    """The local folder pip installed vitamin from, and whether it is an editable install."""
    try:
        text = metadata.distribution(DISTRIBUTION).read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        return None, False
    try:
        record = json.loads(text or "{}")
        url = urlsplit(record["url"])
    except (ValueError, KeyError, TypeError, AttributeError):
        return None, False
    if url.scheme != "file" or "dir_info" not in record:  # a wheel or an archive: not a checkout
        return None, False
    return unquote(url.path), bool(record["dir_info"].get("editable"))
