"""A task's data read as the field reads it, and what cannot be read so refused with a message: retrieval CSVs
(`retrieval:PATH`, zip or folder) by their documented naming rules, checked against a plain reading of the
rules on generated data; zip members and images read within bounds; every tower's embeddings checked in every
kind of task (not finite, zero, collapsed)."""

from __future__ import annotations

import csv
import io
import random
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

import pytest
import torch
from conftest import Run
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_eval import evaluate, image_bytes, image_folder
from test_retrieval import local_pairs, rewrite_csv

from vitamin_cli.errors import VitaminError
from vitamin_cli.eval import data as eval_data
from vitamin_cli.eval import layouts, tasks

# ---------------------------------------------------------------------------------------------------
# retrieval:PATH: rows name images by path or by base name


def prepared(root: Path) -> eval_data.TaskData:
    return layouts.prepare(tasks.load().resolve([f"retrieval:{root}"], [])[0], root / "hub")


def write_pairs(root: Path, files: list[str], rows: list[str], as_zip: bool, top: str = "") -> None:
    """Images at these relative paths (each file's bytes its path) and a CSV with a row naming each of `rows`."""
    root.mkdir(parents=True, exist_ok=True)
    if as_zip:
        with zipfile.ZipFile(root / "images.zip", "w") as archive:
            for name in files:
                archive.writestr(top + name, name.encode())
    else:
        for name in files:
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_bytes(name.encode())
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["filename", "raw"])
    writer.writerows([name, f'["a caption of {name}"]'] for name in rows)
    (root / "pairs.csv").write_text(out.getvalue())


def read_back(source: eval_data.ImageSource) -> str:
    data = eval_data.read_image(source)
    assert data is not None
    return data.decode()


def test_rows_naming_two_files_of_one_base_name_by_path_read_each(tmp_path: Path) -> None:
    for as_zip in (False, True):
        root = tmp_path / f"zip{as_zip}"
        write_pairs(root, ["sub1/same.png", "sub2/same.png"], ["sub1/same.png", "sub2/same.png"], as_zip, "photos/")
        assert [read_back(s) for s, _ in prepared(root).images] == ["sub1/same.png", "sub2/same.png"]
        write_pairs(root, ["sub1/same.png", "sub2/same.png"], ["sub1/same.png", "same.png"], as_zip, "photos/")
        with pytest.raises(VitaminError, match="'same.png' matches both 'sub1/same.png' and 'sub2/same.png'"):
            prepared(root)


def reference(files: list[str], rows: list[str], as_zip: bool) -> list[str] | str:
    """The documented rules, read plainly: a name with `/` is that path from the images' folder (a zip's: its
    top folder when all its files are under one); a bare name is a base name, which must be unique. The images
    the rows name, or why the task is refused."""
    tops = {f.split("/")[0] + "/" for f in files}
    top = tops.pop() if as_zip and len(tops) == 1 and all("/" in f for f in files) else ""
    found = []
    for name in rows:
        if "/" in name:
            match = [f for f in files if str(PurePosixPath(name)) in (f, f.removeprefix(top))]
        else:
            match = [f for f in files if f.rsplit("/", 1)[-1] == name]
            if len(match) > 1:
                return "matches both"
        if not match:
            return "is not in"
        if match[0] in found:
            return "rows name the same image"
        found.append(match[0])
    return found if len(found) >= 2 else "retrieval needs at least 2"


PART = st.sampled_from(["a", "b", "A", "x y", "a.b", "1"])
FILE = st.builds(lambda folders, base, ext: "/".join([*folders, base + ext]),
                 st.lists(PART, max_size=2), PART, st.sampled_from([".png", ".JPG", ".jpeg"]))  # fmt: skip


@st.composite
def pairs_data(draw: st.DrawFn) -> tuple[list[str], list[str]]:
    files = sorted(draw(st.sets(FILE, min_size=1, max_size=6)), key=str.lower)
    files = [f for f in files if not any(g.startswith(f + "/") or f.startswith(g + "/") for g in files if g != f)]
    named = st.sampled_from(files).flatmap(lambda f: st.sampled_from([f, f.rsplit("/", 1)[-1], "./" + f]))
    rows = draw(st.lists(st.one_of(named, FILE), min_size=1, max_size=6))
    return files, rows


def check_against_reference(case: tuple[list[str], list[str]], as_zip: bool, top: str) -> None:
    files, rows = case
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "pairs"
        write_pairs(root, files, rows, as_zip, top)
        expected = reference([top + f for f in files], rows, as_zip)
        try:
            got: list[str] | str = [top + read_back(source) for source, _ in prepared(root).images]
        except VitaminError as err:
            assert isinstance(expected, str) and expected in err.message, (expected, err.message)
            return
        assert got == expected


LAYOUTS = [(False, ""), (True, ""), (True, "flickr30k-images/")]


@pytest.mark.parametrize(("as_zip", "top"), LAYOUTS, ids=["folder", "zip", "zip-under-a-folder"])
@settings(max_examples=70, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=pairs_data())
def test_retrieval_reads_what_the_rules_say_210_datasets(
    case: tuple[list[str], list[str]], as_zip: bool, top: str
) -> None:
    check_against_reference(case, as_zip, top)


@pytest.mark.slow  # 5,100 generated datasets, about a minute
@pytest.mark.parametrize(("as_zip", "top"), LAYOUTS, ids=["folder", "zip", "zip-under-a-folder"])
@settings(max_examples=1700, deadline=None)
@given(case=pairs_data())
def test_retrieval_reads_what_the_rules_say_5100_datasets(
    case: tuple[list[str], list[str]], as_zip: bool, top: str
) -> None:
    check_against_reference(case, as_zip, top)


def test_a_row_without_a_cell_and_an_encrypted_member_are_said_on_stderr(
    run: Run, tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    _, checkpoint = tiny
    root = local_pairs(tmp_path / "short")
    rewrite_csv(root, lambda rows: rows.__setitem__(2, rows[2][1:4]))  # no cell after `filename`'s
    root2 = local_pairs(tmp_path / "locked")
    encrypt_member(root2 / "images.zip", "photos/1001.jpg")
    for folder, said in (
        (root, "pairs.csv, line 3 has no "),
        (root2, "images.zip: member 'photos/1001.jpg' is encrypted"),
    ):
        code, data, stderr = evaluate(run, "Tiny-s1M", "--checkpoint", str(checkpoint), "--task", f"retrieval:{folder}")
        assert code == 1 and said in data["results"][0]["error"]
        (line,) = [line for line in stderr.splitlines() if said in line]
        assert "hint:" in line and "Traceback" not in stderr


def encrypt_member(path: Path, member: str) -> None:
    """Mark a member encrypted, as `zip -e` does (Python's zipfile cannot write one)."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(member)
    data[info.header_offset + 6] |= 1  # the local header's flags
    central = data.index(b"PK\x01\x02")
    while data[central + 46 : central + 46 + len(member)] != member.encode():
        central = data.index(b"PK\x01\x02", central + 4)
    data[central + 8] |= 1  # the central directory's flags
    path.write_bytes(bytes(data))


# ---------------------------------------------------------------------------------------------------
# Bounds: a zip bomb, a large file, an image of too many pixels


def test_a_zip_bomb_is_refused_before_it_is_inflated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(eval_data, "MAX_IMAGE_BYTES", 2**20)
    write_pairs(tmp_path / "pairs", ["a.png", "b.png"], ["a.png", "b.png"], as_zip=True)
    with zipfile.ZipFile(tmp_path / "pairs" / "images.zip", "a", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("bomb.png", bytes(3 * 2**20))  # 3 MiB of zeros: 3 KiB in the zip
    write_pairs(tmp_path / "pairs", [], ["a.png", "bomb.png"], as_zip=False)
    with pytest.raises(VitaminError, match=r"member 'bomb.png' is 3 MiB, over the 1 MiB an image may be; refused"):
        prepared(tmp_path / "pairs")
    big = tmp_path / "big.png"
    big.write_bytes(bytes(2**20 + 1))
    with pytest.raises(VitaminError, match=r"big.png is 1 MiB, over the 1 MiB an image may be"):
        eval_data.read_image(big)


def test_an_image_of_too_many_pixels_is_refused_before_it_is_decoded(monkeypatch: pytest.MonkeyPatch) -> None:
    from PIL import Image

    data = image_bytes(random.Random(0), size=(40, 30), kind="PNG")
    assert eval_data.decode(data, lambda image: image.size) == (40, 30)
    monkeypatch.setattr(eval_data, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(VitaminError, match=r"photo.png is 0.0 million pixels, over the 0.0 million"):
        eval_data.decode(data, lambda image: image.size, "photo.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100_000)  # PIL's own refusal, past twice its bound
    large = image_bytes(random.Random(0), size=(2000, 1500), kind="PNG")
    with pytest.raises(VitaminError, match=r"an image is 3.0 million pixels, over the 0.0 million"):
        eval_data.decode(large, lambda image: image.size)


class Failing(torch.utils.data.Dataset):  # type: ignore[type-arg]
    def __len__(self) -> int:
        return 2

    def __getitem__(self, index: int) -> None:
        raise eval_data.DataError("images.zip: member 'x.png' is broken", hint="zip it again")


def test_a_data_error_in_a_worker_keeps_its_message_and_hint() -> None:
    with pytest.raises(eval_data.DataError) as raised:
        list(eval_data.batches(Failing(), 2, workers=1))
    assert raised.value.message == "images.zip: member 'x.png' is broken" and raised.value.hint == "zip it again"


# ---------------------------------------------------------------------------------------------------
# Embeddings: not finite, zero, or the same vector for every input fail the task, in every kind


def check(batches: list[torch.Tensor], dtype: str = "fp32") -> str | None:
    from vitamin_cli.eval.zeroshot import Embeddings, EvalSettings

    checked = Embeddings("task", "image", EvalSettings(dtype=dtype))
    try:
        for batch in batches:
            out = checked.add(batch)
            assert torch.allclose(out.norm(dim=-1), torch.ones(len(batch)))
        checked.done()
    except VitaminError as err:
        return err.one_line()
    return None


def test_embeddings_are_checked_over_the_whole_task() -> None:
    rows = torch.randn(9, 8)
    assert check([rows[:4], rows[4:8], rows[8:]]) is None  # a last batch of one row is fine
    assert "are not finite (NaN or inf)" in (check([rows[:4], rows[4:] * float("inf")]) or "")
    assert "in bf16 are not finite" in (check([rows * 1e39], "bf16") or "") and "--dtype fp32" in (
        check([rows * 1e39], "bf16") or ""
    )
    assert "are zero" in (check([rows[:4], torch.zeros(2, 8)]) or "")
    same = rows[0].repeat(5, 1)
    assert "all the same vector over the task's 10 images: the tower collapsed, or the images are all alike" in (
        check([same * 3, same + 1e-6]) or ""
    )
    assert check([same, same + torch.randn(5, 8) * 0.01]) is None  # apart by more than the tolerance
    assert check([rows[:1]]) is None  # one row: nothing to compare


def broken_checkpoint(checkpoint: Path, tmp_path: Path, change: dict[str, tuple[float, float]]) -> Path:
    """The checkpoint with these weights times a, plus b: all of them finite."""
    state = torch.load(checkpoint, weights_only=True)
    for name, (times, plus) in change.items():
        state[name] = state[name] * times + plus
        assert torch.isfinite(state[name]).all()
    path = tmp_path / "broken.pt"
    torch.save(state, path)
    return path


@pytest.mark.parametrize(
    ("change", "said"),
    [({"visual.proj": (1e37, 0)}, "image tower's embeddings in fp32 are not finite"),
     ({"visual.ln_post.weight": (0, 0), "visual.ln_post.bias": (0, 0)}, "image tower's embeddings in fp32 are zero"),
     ({"ln_final.weight": (0, 0), "ln_final.bias": (0, 1)}, "text tower's embeddings in fp32 are all the same vector")],
    ids=["overflow", "zero", "text-collapsed"],
)  # fmt: skip
def test_a_broken_tower_fails_classification_and_retrieval(
    run: Run, tiny: tuple[Path, Path], tmp_path: Path, change: dict[str, tuple[float, float]], said: str
) -> None:
    _, checkpoint = tiny
    broken = broken_checkpoint(checkpoint, tmp_path, change)
    folder = image_folder(tmp_path / "photos", ["cat", "dog"], 3)
    pairs = local_pairs(tmp_path / "pairs")
    for task in (f"folder:{folder}", f"retrieval:{pairs}"):
        code, data, stderr = evaluate(run, "Tiny-s1M", "--checkpoint", str(broken), "--task", task)
        assert code == 1 and said in data["results"][0]["error"], (task, data)
        assert said in stderr and "hint: check the weights" in stderr


def test_lines_are_the_files_own_and_odd_names_are_found(tmp_path: Path) -> None:
    """A CSV's line numbers count blank lines and captions of several lines; a member named `12:30.png` is no
    drive letter; a name written with `\\` (on Windows, in the CSV or the zip) reads as `/`."""
    root = tmp_path / "pairs"
    write_pairs(root, ["12:30.png", "sub/b.png"], [], as_zip=True, top="photos\\")
    (root / "pairs.csv").write_text(
        'filename,raw\n\n12:30.png,"[""one"",\n""two""]"\nsub\\b.png,["x"]\n\nc.png,["y"]\n'
    )
    with pytest.raises(VitaminError, match=r"pairs.csv, line 7: image 'c.png' is not in images.zip"):
        prepared(root)
    (root / "pairs.csv").write_text((root / "pairs.csv").read_text().replace("c.png", "sub/b.png"))
    with pytest.raises(VitaminError, match=r"rows name the same image, 'sub/b.png', on lines 5 and 7"):
        prepared(root)
    (root / "pairs.csv").write_text('filename,raw\n\n12:30.png,"[""one"",\n""two""]"\nsub\\b.png,["x"]\n')
    assert [read_back(source) for source, _ in prepared(root).images] == ["12:30.png", "sub/b.png"]


def test_a_class_folder_that_cannot_be_read_fails_the_task_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    folder = image_folder(tmp_path / "photos", ["cat", "dog"], 2)
    scandir = os.scandir

    def refusing(path: str) -> object:  # as `chmod 000 dog` does for anyone but root
        if str(path).endswith("dog"):
            raise PermissionError(13, "Permission denied")
        return scandir(path)

    monkeypatch.setattr(os, "scandir", refusing)
    task = tasks.load().resolve([f"folder:{folder}"], [])[0]
    with pytest.raises(VitaminError, match=r"dog' cannot be read \(Permission denied\)"):
        layouts.prepare(task, tmp_path / "hub")


def test_a_colon_in_a_members_name_is_no_drive_letter(tmp_path: Path) -> None:
    archive = tmp_path / "images.zip"
    with zipfile.ZipFile(archive, "w") as out:
        out.writestr("12:30.png", b"x")
    assert eval_data.zip_members(archive)["12:30.png"] == ["12:30.png"]
    with zipfile.ZipFile(archive, "a") as out:
        out.writestr("C:/windows.png", b"x")
    with pytest.raises(VitaminError, match="member 'C:/windows.png' leads outside the zip's folder"):
        eval_data.zip_members(archive)


def test_a_process_keeps_few_zips_open(tmp_path: Path) -> None:
    """A sweep over many tasks (or a test suite) reads many zips: the oldest are closed, never all kept open,
    which ran a process out of file descriptors."""
    before = len(list(Path("/proc/self/fd").iterdir()))
    for number in range(eval_data.OPEN_ZIPS + 20):
        write_pairs(tmp_path / str(number), ["a.png"], [], as_zip=True)
        assert read_back((tmp_path / str(number) / "images.zip", "a.png")) == "a.png"
    assert len(eval_data._zips) <= eval_data.OPEN_ZIPS
    assert len(list(Path("/proc/self/fd").iterdir())) <= before + eval_data.OPEN_ZIPS
