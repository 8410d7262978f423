"""The `wds:` layout reads a task's shards as webdataset (1.0.2) reads them for CLIP_benchmark: the same
samples (key, label, image chosen, in order), or a refusal naming the shard and the key where webdataset would
raise, would read a key as two samples, or CLIP_benchmark would find no label or no image. Property tests
check it against webdataset's own reading; the examples pin each rule."""

from __future__ import annotations

import io
import tarfile
import tempfile
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vitamin_cli.eval.data import DataError
from vitamin_cli.eval.layouts import wds

CLASSES = 3
IMAGE_ORDER = ["webp", "png", "jpg", "jpeg"]  # CLIP_benchmark's `.to_tuple(["webp", "png", "jpg", "jpeg"], "cls")`

# Member names: in sub-folders or not (`a.d/` sorts between `a.cls` and `a.jpg`), keys of several dots (`a.b.jpg` is
# key `a`, extension `b.jpg`), upper-case extensions (`JPG` is `jpg`: twice in a sample with `jpg`), a small pool
# of keys (so that one comes back, in its shard or the next), and names webdataset skips or refuses.
FOLDERS = ["", "cat/", "a.d/", "x/.y/"]
BASES = ["0000", "0001", "0002", "a", "A", "__m__"]
ODD_FOLDERS = [*FOLDERS, "__cache__/"]  # skipped
ODD_BASES = [*BASES, "a.b", ".h"]  # `a.b.jpg`: key `a`; `.h.jpg`: skipped at the top, key `cat/` in `cat/`
IMAGE = ["jpg", "JPG", "jpeg", "png", "webp"]
ANY_EXTENSION = [*IMAGE, "cls", "Cls", "b.jpg", "txt", "__key__", ""]  # `__key__`: webdataset raises
# Members of no sample: webdataset skips them (no dot in the base name, meta names, not a regular file).
STRAYS = [("__meta__", tarfile.REGTYPE), ("README", tarfile.REGTYPE), ("cat/README", tarfile.REGTYPE),
          ("__cache__/0000.jpg", tarfile.REGTYPE), (".hidden", tarfile.REGTYPE), ("cat", tarfile.DIRTYPE),
          ("0000.png", tarfile.SYMTYPE), ("a.jpg", tarfile.DIRTYPE)]  # fmt: skip

# A sample as a task holds it four times in five (`cls`, an image, perhaps others); any members else.
whole = st.tuples(
    st.sampled_from(IMAGE), st.lists(st.sampled_from(["png", "webp", "jpeg", "txt", "b.jpg"]), max_size=2)
)
good = st.tuples(
    st.sampled_from(FOLDERS),
    st.sampled_from(BASES),
    whole.map(lambda drawn: list(dict.fromkeys(["cls", drawn[0], *drawn[1]]))),
)
odd = st.tuples(
    st.sampled_from(ODD_FOLDERS),
    st.sampled_from(ODD_BASES),
    st.lists(st.sampled_from(ANY_EXTENSION), unique=True, max_size=4),
)


@st.composite
def tasks(draw: Any) -> list[list[tuple[str, bytes, bytes]]]:
    """1 to 3 shards, each a list of members (name, tar type, bytes): 0 to 6 samples with strays, as written
    (one time in two), sorted by full name (a tar of sorted folders) or in any order."""
    shards = []
    for shard in range(draw(st.integers(1, 3))):
        samples = draw(st.lists(st.one_of(good, good, good, good, odd), max_size=6))
        members = [
            (f"{folder}{base}.{extension}", tarfile.REGTYPE, payload(shard, index, extension))
            for index, (folder, base, parts) in enumerate(samples)
            for extension in parts
        ]
        for name, kind in draw(st.lists(st.sampled_from(STRAYS), max_size=2, unique=True)):
            members.insert(draw(st.integers(0, len(members))), (name, kind, b"stray"))
        order = draw(st.sampled_from(["as written", "as written", "sorted", "any"]))
        if order == "sorted":
            members.sort()
        elif order == "any":
            members = draw(st.permutations(members))
        shards.append(members)
    return shards


def payload(shard: int, index: int, extension: str) -> bytes:
    """A label for a `cls` member (its sample's index, modulo CLASSES), else bytes naming the member."""
    return str(index % CLASSES).encode() if extension.lower() == "cls" else f"{shard}/{index}.{extension}".encode()


def write(root: Path, task: list[list[tuple[str, bytes, bytes]]]) -> list[Path]:
    paths = []
    for number, members in enumerate(task):
        path = root / f"{number}.tar"
        with tarfile.open(path, mode="w") as tar:
            for name, kind, data in members:
                info = tarfile.TarInfo(name)
                info.type = kind
                info.linkname = "elsewhere" if kind == tarfile.SYMTYPE else ""
                info.size = len(data) if kind == tarfile.REGTYPE else 0
                tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
        paths.append(path)
    return paths


def webdataset_reading(shards: list[Path]) -> tuple[list[tuple[Path, list[dict[str, Any]]]], tuple[Path, str] | None]:
    """Each shard's samples as `webdataset.WebDataset` (CLIP_benchmark's reader) gives them, undecoded, and
    where it raised (the shard, the key of the member it names), if it did."""
    import webdataset
    from webdataset.tariterators import base_plus_ext

    read: list[tuple[Path, list[dict[str, Any]]]] = []
    for shard in shards:
        samples: list[dict[str, Any]] = []
        read.append((shard, samples))
        try:
            samples.extend(webdataset.WebDataset([str(shard)], shardshuffle=False, empty_check=False))
        except ValueError as err:
            assert ": duplicate file name in tar file" in str(err.args[0]), err
            return read, (shard, base_plus_ext(str(err.args[0]).partition(": duplicate file name")[0])[0])
    whole = webdataset.WebDataset([str(shard) for shard in shards], shardshuffle=False, empty_check=False)
    by_shard = [(str(shard), sample["__key__"]) for shard, samples in read for sample in samples]
    assert [(sample["__url__"], sample["__key__"]) for sample in whole] == by_shard  # never across shards
    return read, None


def reference(shards: list[Path]) -> tuple[str, Any]:
    """("read", [((shard, key), label, image bytes), ...]) as webdataset and CLIP_benchmark read the task, or
    ("refused", (shard, key)) at the first sample where they would raise or where a key comes back in its shard
    (webdataset reads it as two samples)."""
    read, raised = webdataset_reading(shards)
    samples = []
    for shard, found in read:
        seen = set()
        for sample in found:
            key = sample["__key__"]
            image = next((sample[extension] for extension in IMAGE_ORDER if extension in sample), None)
            if key in seen or "cls" not in sample or image is None:
                return "refused", (shard, key)
            seen.add(key)
            samples.append(((shard, key), int(sample["cls"]), image))
    return ("refused", raised) if raised is not None else ("read", samples)


def vitamin(shards: list[Path]) -> tuple[str, Any]:
    """("read", [((shard, key), label, image bytes), ...]) from `wds_samples` (the image's bytes as they come
    to decoding) and `records` (the keys), or ("refused", the DataError's message)."""
    try:
        with mock.patch.object(wds, "decode", lambda data, transform, name="": data):
            samples = list(wds.wds_samples(shards, lambda image: image, False, CLASSES))
    except DataError as err:
        return "refused", err.message
    keys = [(shard, key) for shard in shards for key, _ in records(shard)]
    return "read", [(key, sample.label, sample.image) for key, sample in zip(keys, samples, strict=True)]


def records(shard: Path) -> list[tuple[str, dict[str, bytes]]]:
    with tarfile.open(shard, mode="r|") as tar:
        return list(wds.records(tar))


def check_same_reading(task: list[list[tuple[str, bytes, bytes]]]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        shards = write(Path(folder), task)
        expected, value = reference(shards)
        outcome, found = vitamin(shards)
        assert outcome == expected, (found, value)
        if expected == "read":
            assert found == value
        else:
            shard, key = value
            assert found.startswith(f"{shard}: ") and repr(key) in found, (found, value)


@settings(max_examples=200, deadline=None)
@given(tasks())
def test_200_tasks_read_as_webdataset_reads_them_or_refused_where_it_would_fail(
    task: list[list[tuple[str, bytes, bytes]]],
) -> None:
    """200 generated tasks (about 2 s): vitamin's samples are webdataset's, or both refuse."""
    check_same_reading(task)


@pytest.mark.slow  # 5,000 examples: about a minute
@settings(max_examples=5000, deadline=None)
@given(tasks())
def test_5000_tasks_read_as_webdataset_reads_them_or_refused_where_it_would_fail(
    task: list[list[tuple[str, bytes, bytes]]],
) -> None:
    check_same_reading(task)


# ---------------------------------------------------------------------------------------------------
# Examples, one rule each


def shard_of(path: Path, members: list[tuple[str, bytes]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, mode="w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def read(shard: Path) -> list[tuple[int, Any]]:
    with mock.patch.object(wds, "decode", lambda data, transform, name="": data):
        return [(sample.label, sample.image) for sample in wds.wds_samples([shard], lambda image: image, False, 2)]


def test_members_in_sub_folders_are_50_samples_not_25(tmp_path: Path) -> None:
    """`cat/0000.jpg` and `dog/0000.jpg` are two samples: the key is the full name, folders included (written
    index by index, the two folders' members of one base name are next to each other)."""
    folders = ["cat", "dog"]
    members = [
        (
            f"{folder}/{index:04d}.{extension}",
            str(label).encode() if extension == "cls" else f"{folder}{index}".encode(),
        )
        for index in range(25)
        for label, folder in enumerate(folders)
        for extension in ("cls", "jpg")
    ]
    shard = shard_of(tmp_path / "test" / "0.tar", members)
    assert [key for key, _ in records(shard)] == [f"{folder}/{i:04d}" for i in range(25) for folder in folders]
    assert read(shard) == [(label, f"{folder}{i}".encode()) for i in range(25) for label, folder in enumerate(folders)]


def test_the_image_is_the_first_of_webp_png_jpg_jpeg_and_a_key_stops_at_the_first_dot(tmp_path: Path) -> None:
    shard = shard_of(
        tmp_path / "0.tar",
        [("a.cls", b"0"), ("a.jpg", b"jpg"), ("a.PNG", b"png"), ("a.jpeg", b"jpeg"),
         ("b.cls", b"1"), ("b.x.webp", b"x.webp"), ("b.jpeg", b"jpeg"), ("__meta__", b""), ("README", b"")],
    )  # fmt: skip
    assert [(key, sorted(parts)) for key, parts in records(shard)] == [
        ("a", ["cls", "jpeg", "jpg", "png"]),
        ("b", ["cls", "jpeg", "x.webp"]),
    ]
    assert read(shard) == [(0, b"png"), (1, b"jpeg")]


def test_an_extension_twice_in_a_sample_is_refused_naming_the_shard_and_the_key(tmp_path: Path) -> None:
    shard = shard_of(tmp_path / "0.tar", [("cat/a.cls", b"0"), ("cat/a.jpg", b"1"), ("cat/a.JPG", b"2")])
    with pytest.raises(DataError) as refused:
        read(shard)
    assert refused.value.message.startswith(f"{shard}: sample 'cat/a' has two 'jpg' members")


def test_a_key_whose_members_are_apart_is_refused_naming_the_shard_and_the_key(tmp_path: Path) -> None:
    """Sorted by name, `a.d/x.jpg` comes between `a.cls` and `a.jpg`: webdataset would read `a` as two samples
    (the first without an image, which is what a task read in order meets first)."""
    shard = shard_of(tmp_path / "0.tar", [("a.cls", b"0"), ("a.d/x.cls", b"1"), ("a.d/x.jpg", b"x"), ("a.jpg", b"a")])
    with pytest.raises(DataError) as refused:
        records(shard)
    assert refused.value.message.startswith("sample 'a': its members are not next to each other")
    shard = shard_of(tmp_path / "1.tar", [("a.cls", b"0"), ("a.jpg", b"a"), ("b.cls", b"1"), ("b.jpg", b"b"),
                                          ("a.png", b"a")])  # fmt: skip
    with pytest.raises(DataError) as refused:
        read(shard)
    assert refused.value.message.startswith(f"{shard}: sample 'a': its members are not next to each other")


def test_the_same_key_in_two_shards_is_two_samples(tmp_path: Path) -> None:
    one = shard_of(tmp_path / "0.tar", [("a.cls", b"0"), ("a.jpg", b"first")])
    two = shard_of(tmp_path / "1.tar", [("a.jpg", b"second"), ("a.cls", b"1")])
    with mock.patch.object(wds, "decode", lambda data, transform, name="": data):
        samples = list(wds.wds_samples([one, two], lambda image: image, False, 2))
    assert [(sample.label, sample.image) for sample in samples] == [(0, b"first"), (1, b"second")]


def test_a_member_over_the_bound_is_refused_before_it_is_read(tmp_path: Path, monkeypatch: Any) -> None:
    shard = shard_of(tmp_path / "0.tar", [("a.cls", b"0"), ("a.jpg", b"x" * 101)])
    monkeypatch.setattr(wds, "MAX_MEMBER_BYTES", 100)
    extract = tarfile.TarFile.extractfile

    def extractfile(self: tarfile.TarFile, member: Any) -> Any:
        assert member.name != "a.jpg", "read before it was refused"
        return extract(self, member)

    monkeypatch.setattr(tarfile.TarFile, "extractfile", extractfile)
    with pytest.raises(DataError) as refused:
        read(shard)
    assert refused.value.message == f"{shard}: member 'a.jpg' is 101 bytes, over the 100 bytes a member may be; refused"
    assert wds.size_text(int(1.6 * 2**30)) == "1.6 GiB" and wds.size_text(wds.MAX_MEMBER_BYTES) == "100 bytes"


def test_the_size_of_the_bound_reads_in_mib() -> None:
    assert wds.size_text(64 * 2**20) == "64 MiB" == wds.size_text(wds.MAX_MEMBER_BYTES)


@pytest.mark.parametrize("members", [[("a.cls", b"0")], [("a.cls", b"0"), ("a.gif", b"g"), ("a.b.jpg", b"j")]])
def test_a_sample_without_an_image_is_refused_naming_it(tmp_path: Path, members: list[tuple[str, bytes]]) -> None:
    shard = shard_of(tmp_path / "0.tar", [("z.cls", b"1"), ("z.jpg", b"z"), *members])
    with pytest.raises(DataError) as refused:
        read(shard)
    assert refused.value.message.startswith(f"{shard}: sample 'a' has no image: none of webp, png, jpg, jpeg")


@pytest.mark.parametrize("extension", ["__key__", "__URL__", "__local_path__", "__bad__"])
def test_an_extension_naming_a_field_of_webdataset_is_refused(tmp_path: Path, extension: str) -> None:
    """webdataset raises on `a.__key__`, overwrites `a.__local_path__`, and drops a sample with `a.__bad__`."""
    shard = shard_of(tmp_path / "0.tar", [("a.cls", b"0"), ("a.jpg", b"j"), (f"a.{extension}", b"1")])
    with pytest.raises(DataError) as refused:
        read(shard)
    assert refused.value.message.startswith(f"{shard}: sample 'a' has the member 'a.{extension}'")


def test_an_undecodable_image_is_counted_not_refused(tmp_path: Path) -> None:
    shard = shard_of(tmp_path / "0.tar", [("a.cls", b"1"), ("a.jpg", b"not an image")])
    (sample,) = wds.wds_samples([shard], lambda image: image, False, 2)
    assert sample.image is None and sample.label == 1


def test_a_damaged_header_or_a_second_tar_after_the_first_is_refused_not_read_as_fewer_samples(tmp_path: Path) -> None:
    """tarfile (and so webdataset) stops without a word at a damaged header, or at the end of the first of two
    tars written one after the other: every sample after it would be lost."""
    members = [(f"{key}.{ext}", data) for key in "abcd" for ext, data in (("cls", b"1"), ("png", b"image"))]
    whole = shard_of(tmp_path / "whole.tar", members).read_bytes()
    damaged = bytearray(whole)
    damaged[512 * 4 + 150] ^= 0xFF  # the checksum of b.cls's header (each member: a header and a block)
    (tmp_path / "damaged.tar").write_bytes(bytes(damaged))
    (tmp_path / "two.tar").write_bytes(whole + whole)
    assert len(read(tmp_path / "whole.tar")) == 4
    for name in ("damaged.tar", "two.tar"):
        with pytest.raises(DataError, match=rf"{name}: its members stop at byte [\d,]+, where a damaged header"):
            read(tmp_path / name)


def test_a_compressed_shard_is_refused_naming_how_to_read_it(tmp_path: Path) -> None:
    import gzip

    plain = shard_of(tmp_path / "plain.tar", [("a.cls", b"1"), ("a.png", b"image")])
    (tmp_path / "0.tar").write_bytes(gzip.compress(plain.read_bytes()))
    with pytest.raises(DataError, match=r"0.tar: is gzip-compressed; the layout's shards are plain tars") as refused:
        read(tmp_path / "0.tar")
    assert refused.value.hint is not None and "gzip -d" in refused.value.hint


def test_members_no_sample_uses_are_not_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wds, "MAX_MEMBER_BYTES", 100)
    shard = shard_of(tmp_path / "0.tar", [("a.cls", b"1"), ("a.json", bytes(1000)), ("a.png", b"image")])
    assert read(shard) == [(1, b"image")]  # the 1,000-byte json is over the bound, and skipped unread
