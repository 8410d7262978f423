"""`folder:PATH` reads what torchvision's `ImageFolder` reads: the same images, in the same order, with the same
labels, on many generated folder trees; except where vitamin's rules differ, each stated in
`vitamin_cli/eval/layouts/folder.py` and applied to the reference here:

- hidden names (starting with `.`) are skipped: such a class folder is no class, such a file or folder inside a
  class is not read;
- a link back to the task's folder or to a folder the walk is already inside (a cycle) is not followed
  (`ImageFolder` walks it until the path is too long): the raw `make_dataset` is compared on the classes whose
  walk has no cycle, and on every class `make_dataset` with its `os.walk` pruned of those links;
- only regular files (through links) are images: a broken link or a pipe named `x.jpg` is skipped;
- a class folder without images is a class (`make_dataset(..., allow_empty=True)`);
- two class folders whose names open_clip's tokenizer reads as one prompt (once `_` reads as a space), or one
  it reads as blank, fail the task, naming the folders.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vitamin_cli.errors import UsageError
from vitamin_cli.eval import layouts, tasks
from vitamin_cli.eval.layouts import folder as folder_layout
from vitamin_cli.eval.tasks import label_of

Sample = tuple[str, int]
# the trees are made in memory where the system has a place for it: on a disk, removing folders can take ms each
SCRATCH = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK | os.X_OK) else None

# ---------------------------------------------------------------------------------------------------
# Generated folder trees


FAIR_NAMES = st.sampled_from(["cat", "dog", "bird", "x-y", "x", "a.b", "b0", "tabby_cat", "é"])
CLASS_NAMES = st.one_of(
    FAIR_NAMES,
    FAIR_NAMES,
    st.sampled_from(["tabby cat", "Cat", "_", " x", "X ", "e\u0301", ".hidden", ".dog"]),  # some read as others
    st.text(st.sampled_from(list("aAb_ .")), min_size=1, max_size=3).filter(lambda n: n not in (".", "..")),
)
# `x-y` and `x.d` sort before `x/...` as strings ('-' and '.' before '/'), `x0` after: the walk's order shows
PARTS = st.sampled_from(["x", "x-y", "x.d", "x0", "X", ".h", "a b", "d.jpg"])
STEMS = st.sampled_from(["0", "b", "B", ".h", "", "x-y", "x", "._0"])
IMAGE_EXTENSIONS = [".jpg", ".JPG", ".jpeg", ".Jpeg", ".png", ".ppm", ".PGM", ".bmp", ".tif", ".TIFF", ".webp"]
OTHER_EXTENSIONS = [".gif", ".txt", "", ".jpg.txt", ".txt.png", ".jpg ", ".jpg.", "jpg"]
EXTENSIONS = st.one_of(
    st.sampled_from(IMAGE_EXTENSIONS), st.sampled_from(IMAGE_EXTENSIONS), st.sampled_from(OTHER_EXTENSIONS)
)
FILE_NAMES = st.builds(lambda stem, ext: stem + ext, STEMS, EXTENSIONS).filter(lambda n: n not in ("", ".", ".."))


@st.composite
def plans(draw: st.DrawFn) -> dict[str, Any]:
    """Folders (paths as tuples of names, the task's folder `()`), files in them (a few of them pipes), and links
    placed in them: to a folder (any, so also back up: a cycle), to a file, or to nothing."""
    classes = draw(st.lists(CLASS_NAMES, min_size=draw(st.sampled_from([0, 1, 2, 2, 3])), max_size=4, unique=True))
    folders: list[tuple[str, ...]] = [()] + [(c,) for c in classes]
    for name in classes:
        for sub in draw(st.lists(st.lists(PARTS, min_size=1, max_size=2), max_size=3)):
            folders += [f for f in dict.fromkeys([(name, *sub[:1]), (name, *sub)]) if f not in folders]
    where = st.integers(0, len(folders) - 1)
    inside = st.one_of(where, st.integers(min(1, len(folders) - 1), len(folders) - 1))  # seldom the task's folder
    files = draw(
        st.lists(st.tuples(inside, FILE_NAMES, st.integers(0, 9).map(lambda i: i == 0)), min_size=2, max_size=14)
    )
    targets = st.one_of(
        st.tuples(st.just("folder"), where),
        st.tuples(st.just("file"), st.integers(0, max(len(files) - 1, 0))),
        st.just(("nothing", 0)),
    )
    link_names = st.one_of(PARTS, CLASS_NAMES, FILE_NAMES)
    links = draw(st.lists(st.tuples(where, link_names, targets), max_size=5))
    return {"folders": folders, "files": files, "links": links}


def build(root: Path, plan: dict[str, Any]) -> None:
    folders = [root.joinpath(*f) for f in plan["folders"]]
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    made: list[Path] = []
    for at, name, pipe in plan["files"]:
        made.append(folders[at] / name)
        if os.path.lexists(made[-1]):
            continue
        if pipe:
            os.mkfifo(made[-1])
        else:
            made[-1].write_bytes(b"")
    for at, name, (kind, index) in plan["links"]:
        link = folders[at] / name
        if kind == "folder":
            target = folders[index]
        else:
            target = made[index] if kind == "file" and made else root / "nothing"
        if not os.path.lexists(link):
            link.symlink_to(target)


# ---------------------------------------------------------------------------------------------------
# The reference: torchvision's own functions, with vitamin's stated differences applied


def tokenizer_reads(name: str) -> str:
    """A class name as open_clip's tokenizer cleans a prompt (the `lower` cleaner)."""
    from open_clip.tokenizer import basic_clean, whitespace_clean

    return str(whitespace_clean(basic_clean(label_of(name)))).lower()


def refused(names: list[str]) -> bool:
    read = [tokenizer_reads(n) for n in names]
    return "" in read or len(set(read)) < len(read)


def classes_of(root: str) -> list[str]:
    from torchvision.datasets.folder import find_classes

    try:
        classes, _ = find_classes(root)
    except FileNotFoundError:  # no sub-folder at all
        return []
    return [c for c in classes if not c.startswith(".")]  # difference: hidden class folders are no classes


def make_dataset(root: str, class_to_idx: dict[str, int]) -> list[Sample]:
    from torchvision.datasets.folder import IMG_EXTENSIONS, make_dataset

    if not class_to_idx:
        return []
    samples = make_dataset(root, class_to_idx, extensions=IMG_EXTENSIONS, allow_empty=True)
    # differences: hidden files and folders inside a class are skipped, and so is what is not a regular file
    return [(p, i) for p, i in samples if not hidden_inside(root, p) and os.path.isfile(p)]


def hidden_inside(root: str, path: str) -> bool:
    return any(part.startswith(".") for part in Path(os.path.relpath(path, root)).parts[1:])


def pruned_walk(root: str) -> Callable[..., Iterator[tuple[str, list[str], list[str]]]]:
    """`os.walk`, as `make_dataset` calls it, not entering hidden folders, the task's folder, nor a folder it is
    already inside (by real path)."""
    walk, real_root = os.walk, os.path.realpath(root)

    def pruned(top: str, topdown: bool = True, onerror: Any = None, followlinks: bool = False) -> Iterator[Any]:
        if os.path.realpath(top) == real_root:
            return
        for here, folders, files in walk(top, topdown, onerror, followlinks):
            parts = here[len(top) :].split(os.sep)
            inside = {real_root} | {os.path.realpath(top + os.sep.join(parts[:i])) for i in range(1, len(parts) + 1)}
            folders[:] = [
                f for f in folders if not f.startswith(".") and os.path.realpath(os.path.join(here, f)) not in inside
            ]
            yield here, folders, files

    return pruned


def walk_has_cycle(top: str, limit: int) -> bool:
    """Whether `os.walk` following links goes deeper than the tree has real folders: only a cycle does that."""
    base = top.count(os.sep)
    return any(here.count(os.sep) - base > limit for here, _, _ in os.walk(top, followlinks=True))


def real_folders(root: str) -> int:
    return sum(1 for _ in os.walk(root))


@pytest.fixture(scope="module", autouse=True)
def imported() -> None:
    """torchvision and open_clip imported once, before the examples are timed."""
    import open_clip.tokenizer  # noqa: F401
    import torchvision.datasets.folder  # noqa: F401


@cache
def registry() -> tasks.Registry:
    return tasks.load()


# ---------------------------------------------------------------------------------------------------
# The property


def check_tree(plan: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory(dir=SCRATCH) as scratch:
        base = Path(scratch).resolve()
        build(base / "photos", plan)
        task = registry().resolve([f"folder:{base / 'photos'}"], [])[0]
        root = str(task.path)
        names = classes_of(root)
        if refused(names):
            expect_refusal(task, base, names)
            return
        data = layouts.prepare(task, base / "hub")
        got = [(str(path), label) for path, label in data.images]
        assert data.classnames == [label_of(c) for c in names]
        with mock.patch("os.walk", pruned_walk(root)):
            assert got == make_dataset(root, {c: i for i, c in enumerate(names)})
        limit = real_folders(root)
        acyclic = {c: i for i, c in enumerate(names) if not walk_has_cycle(os.path.join(root, c), limit)}
        assert [s for s in got if s[1] in acyclic.values()] == make_dataset(root, acyclic)  # torchvision untouched
        if len(names) >= 2 and got:
            layouts.check_local(task)
        else:
            with pytest.raises(UsageError):
                layouts.check_local(task)


def expect_refusal(task: tasks.Task, base: Path, names: list[str]) -> None:
    for step in (layouts.check_local, lambda t: layouts.prepare(t, base / "hub")):
        with pytest.raises(UsageError) as caught:
            step(task)
        if len(names) < 2 and step is layouts.check_local:
            continue  # too few classes, said first
        message = caught.value.message
        read = [tokenizer_reads(n) for n in names]
        named = [n for n, r in zip(names, read, strict=True) if not r or read.count(r) > 1]
        shown = sum(repr(n) in message or ascii(n) in message for n in named)
        assert shown >= (1 if "blank" in message else 2), message


@settings(max_examples=250, deadline=None)
@given(plans())
def test_folder_reads_what_image_folder_reads(plan: dict[str, Any]) -> None:
    check_tree(plan)


@pytest.mark.slow
@settings(max_examples=5000, deadline=None)
@given(plans())
def test_folder_reads_what_image_folder_reads_on_many_more_trees(plan: dict[str, Any]) -> None:
    check_tree(plan)


# ---------------------------------------------------------------------------------------------------
# Examples


def folder_task(root: Path, files: list[str]) -> tasks.Task:
    for name in files:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"")
    return registry().resolve([f"folder:{root}"], [])[0]


@pytest.mark.parametrize(
    ("folders", "said"),
    [
        (["tabby_cat", "tabby cat"], "class folders 'tabby cat' and 'tabby_cat' both read as class 'tabby cat'"),
        (["Cat", "cat", "dog"], "class folders 'Cat' and 'cat' both read as class 'cat'"),
        (["a  b", "a_b"], "class folders 'a  b' and 'a_b' both read as class 'a b'"),
        (["é", "e\u0301"], "class folders 'e\\u0301' and '\\xe9' both read as class 'é'"),  # composed or not
        (["_", "dog"], "class folder '_' reads as a blank class name"),
        ([" _ ", "dog"], "class folder ' _ ' reads as a blank class name"),
    ],
)
def test_class_names_the_model_could_not_tell_apart_are_refused(tmp_path: Path, folders: list[str], said: str) -> None:
    task = folder_task(tmp_path / "photos", [f"{name}/0.jpg" for name in folders])
    for step in (layouts.check_local, lambda t: layouts.prepare(t, tmp_path / "hub")):
        with pytest.raises(UsageError) as caught:
            step(task)
        assert said in caught.value.message and caught.value.hint in ("rename one of them", "rename it")


def test_the_command_line_names_both_folders_on_one_line(run: Any, tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder_task(folder, ["tabby_cat/0.jpg", "tabby cat/0.jpg"])
    result = run("eval", "ViT-S-32-s128M", "--task", f"folder:{folder}")
    assert result.exit_code == 2, result.stderr
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert line == (
        f"error: {folder}: class folders 'tabby cat' and 'tabby_cat' both read as class 'tabby cat'; the model "
        "could not tell them apart"
    )
    assert "rename one of them" in result.stderr


def test_images_in_folders_inside_a_class_folder_are_read(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    task = folder_task(folder, ["cat/0.jpg", "cat/indoor/1.PNG", "cat/indoor/deep/2.ppm", "dog/a/b/3.jpeg"])
    data = layouts.prepare(task, tmp_path / "hub")
    assert [(p.relative_to(folder).as_posix(), label) for p, label in data.images] == [
        ("cat/0.jpg", 0),
        ("cat/indoor/1.PNG", 0),
        ("cat/indoor/deep/2.ppm", 0),
        ("dog/a/b/3.jpeg", 1),
    ]
    layouts.check_local(task)
    (folder / "dog" / "a" / "4.jpg").write_bytes(b"")  # another nested image: another revision
    assert layouts.prepare(task, tmp_path / "hub").revision != data.revision


def test_only_nested_images_are_enough_to_run(tmp_path: Path) -> None:
    task = folder_task(tmp_path / "photos", ["cat/x/0.jpg", "dog/.hidden.jpg", "dog/._1.jpg"])
    layouts.check_local(task)
    assert [label for _, label in layouts.prepare(task, tmp_path / "hub").images] == [0]


def test_a_link_that_leads_back_up_is_walked_once(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    task = folder_task(folder, ["cat/0.jpg", "cat/x/1.jpg", "dog/2.jpg"])
    (folder / "cat" / "x" / "up").symlink_to(folder / "cat")  # a cycle within the class
    (folder / "cat" / "top").symlink_to(folder)  # the task's folder: every class again, and a cycle
    (folder / "dog" / "cat").symlink_to(folder / "cat")  # not a cycle: `ImageFolder` reads it too
    got: list[Any] = []
    reader = threading.Thread(target=lambda: got.append(layouts.prepare(task, tmp_path / "hub")), daemon=True)
    reader.start()
    reader.join(timeout=20)
    assert got, "the walk did not end"
    assert [(p.relative_to(folder).as_posix(), label) for p, label in got[0].images] == [
        ("cat/0.jpg", 0),
        ("cat/x/1.jpg", 0),
        ("dog/2.jpg", 1),
        ("dog/cat/0.jpg", 1),
        ("dog/cat/x/1.jpg", 1),
    ]


def test_the_image_extensions_are_torchvisions() -> None:
    from torchvision.datasets.folder import IMG_EXTENSIONS

    assert folder_layout.IMG_EXTENSIONS == IMG_EXTENSIONS
