"""Pin released checkpoints in zoo.yaml: the commit, sha256 and size the Hub serves now.

The file is edited as text, one `weights:` value at a time, so its comments, order and layout stay as they
are; the result is validated before it replaces the file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from vitamin_cli.errors import VitaminError
from vitamin_cli.files import save
from vitamin_cli.hub.ids import is_sha256
from vitamin_cli.yamlschema import YamlLoader
from vitamin_cli.zoo import Model, Weights, schema


@dataclass(frozen=True)
class Pin:
    name: str
    repo: str
    revision: str
    sha256: str
    size_bytes: int


def fetch_pins(models: Sequence[Model], revision: str | None = None, token: str | bool | None = None) -> list[Pin]:
    """Ask the Hub what each model's checkpoint is now (network)."""
    from vitamin_cli.hub.remote import HubFile, Network, PullError, resolve

    network = Network.from_environment()
    pins = []
    for model in models:
        assert model.weights is not None
        wanted = HubFile(model.weights.repo, model.weights.filename, revision or "main")
        remote = resolve(wanted, token, network, model.name)
        if not is_sha256(remote.etag):
            raise PullError(f"{model.name}: the Hub gave ETag {remote.etag!r}, not a sha256: is the file in Git LFS?")
        pins.append(Pin(model.name, model.weights.repo, remote.commit, remote.etag, remote.size))
    return pins


def write_pins(zoo_file: Path, pins: Sequence[Pin]) -> None:
    """Replace the `weights:` value of each pinned model in the file, keeping everything else byte for byte."""
    text = zoo_file.read_text(encoding="utf-8")
    registry = schema.parse(text, zoo_file)
    spans = _weights_spans(text)
    by_name = {pin.name: pin for pin in pins}
    for name, (start, end) in sorted(spans.items(), key=lambda item: item[1][0], reverse=True):
        pin = by_name.get(name)
        if pin is None:
            continue
        current = registry.get(name).weights
        assert current is not None
        pinned = Weights(current.repo, current.filename, pin.revision, pin.sha256, pin.size_bytes)
        text = text[:start] + ": " + _flow(pinned) + text[end:]
    try:
        schema.parse(text, zoo_file)  # never write a file that does not load
    except VitaminError as err:
        raise VitaminError(f"pinning would break {zoo_file}, so it is left as it was: {err.message}") from None
    save(zoo_file, text)


def _weights_spans(text: str) -> dict[str, tuple[int, int]]:
    """By model name: the span from the end of its `weights` key to the end of the value, which is replaced
    by `: {...}` (one line, whether the value was written in flow or in block style)."""
    root = yaml.compose(text, Loader=YamlLoader)
    assert root is not None
    models = next(value for key, value in root.value if key.value == "models")
    spans = {}
    for node in models.value:
        pairs = {key.value: (key, value) for key, value in node.value}
        key, weights = pairs["weights"]
        if isinstance(weights, yaml.MappingNode) and weights.value:
            # a block mapping's own end runs on over blank lines and comments: end at its last value instead
            end = weights.end_mark.index if weights.flow_style else weights.value[-1][1].end_mark.index
            spans[pairs["name"][1].value] = (key.end_mark.index, end)
    return spans


def _flow(w: Weights) -> str:
    """The one-line form zoo.yaml uses; hex digests are quoted, as one of only digits would read as a number."""

    def quoted(value: str | None) -> str:
        return "null" if value is None else f'"{value}"'

    size = "null" if w.size_bytes is None else str(w.size_bytes)
    return (
        f"{{repo: {w.repo}, filename: {w.filename}, revision: {quoted(w.revision)}, "
        f"sha256: {quoted(w.sha256)}, size_bytes: {size}}}"
    )


def check_pinnable(models: Sequence[Model]) -> list[Model]:
    released = [m for m in models if m.weights is not None]
    if not released:
        raise VitaminError("none of these models has public weights to pin")
    return released
