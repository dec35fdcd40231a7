"""Every file of the corpus (tests/hardening/corpus.py) through the app's three ways in.

1. `load_image` / `load_mask`: the documented result or one BadInputError sentence naming the file.
2. The `inpaint` command line with the classical fill: exit 0 and a correct output, or exit 2 with one
   line, and never a partial or stray output file.
3. The window's Open (offscreen): the document, or one sentence in the message bar with the window
   unchanged and still usable.

Each case runs under a hang guard (guards.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

from inpaint_studio import cli
from inpaint_studio.core.errors import BadInputError
from inpaint_studio.core.imageio import load_image, load_mask
from tests.hardening.corpus import IMAGE_CASES, MASK_CASES, Case, MaskCase, photo
from tests.hardening.guards import assert_one_sentence, process_deadline, within

LOAD_LIMIT_S = 20.0  # a 30000-pixel-wide PNG decodes in milliseconds; a hang is minutes
CLI_LIMIT_S = 60.0
FEATHER = 8  # the inpaint command's default feather (pixels outside it must be untouched)


def ids(cases: tuple[Case, ...] | tuple[MaskCase, ...]) -> list[str]:
    return [case.name for case in cases]


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("corpus")


# ---- 1. the loaders ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", IMAGE_CASES, ids=ids(IMAGE_CASES))
def test_load_image(case: Case, corpus_dir: Path) -> None:
    path = case.write(corpus_dir)
    if not case.opens:
        with pytest.raises(BadInputError) as caught:
            within(LOAD_LIMIT_S, load_image, path)
        assert case.error in assert_one_sentence(str(caught.value), path)
        return
    loaded = within(LOAD_LIMIT_S, load_image, path)
    assert (loaded.image.size, loaded.image.mode) == (case.size, case.mode)
    assert loaded.image.info == {}
    if case.check is not None:
        case.check(loaded)


@pytest.mark.parametrize("case", IMAGE_CASES, ids=ids(IMAGE_CASES))
def test_load_mask_follows_the_same_rules(case: Case, corpus_dir: Path) -> None:
    """Any image file can be given as a mask: it opens at the same size, or is refused the same way."""
    path = case.write(corpus_dir)
    if not case.opens:
        with pytest.raises(BadInputError) as caught:
            within(LOAD_LIMIT_S, load_mask, path)
        assert case.error in assert_one_sentence(str(caught.value), path)
        return
    mask = within(LOAD_LIMIT_S, load_mask, path, case.size)
    assert mask.mode == "L" and mask.size == case.size


@pytest.mark.parametrize("case", MASK_CASES, ids=ids(MASK_CASES))
def test_mask_corpus(case: MaskCase, corpus_dir: Path) -> None:
    path = case.write(corpus_dir)
    if case.error:
        with pytest.raises(BadInputError) as caught:
            within(LOAD_LIMIT_S, load_mask, path, (48, 32))
        assert case.error in assert_one_sentence(str(caught.value), path)
        return
    mask = within(LOAD_LIMIT_S, load_mask, path, (48, 32))
    assert mask.mode == "L" and mask.size == (48, 32)
    if case.expected is not None:
        assert np.array_equal(np.asarray(mask), case.expected())


# ---- 2. the command line ------------------------------------------------------------------------------------


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """`inpaint-studio ARGS` in this process (the same `main` the console script calls); (code, stderr)."""
    capsys.readouterr()
    with process_deadline(CLI_LIMIT_S):
        code = cli.main(args)
    return code, capsys.readouterr().err


def centre_mask(size: tuple[int, int]) -> np.ndarray:
    width, height = size
    mask = np.zeros((height, width), np.uint8)
    mask[height // 4 : max(height // 4 + 1, 3 * height // 4), width // 4 : max(width // 4 + 1, 3 * width // 4)] = 255
    return mask


def assert_untouched_outside(out: Path, original: np.ndarray, mask: np.ndarray) -> None:
    """The output has the input's size and every pixel beyond the mask's feather band is the input's."""
    result = np.asarray(Image.open(out))
    assert result.shape == original.shape, f"output {result.shape} for input {original.shape}"
    band = cv2.dilate((mask >= 128).astype(np.uint8), np.ones((2 * FEATHER + 5, 2 * FEATHER + 5), np.uint8))
    outside = band == 0
    assert np.array_equal(result[outside], original[outside]), "pixels outside the edit changed"


def assert_no_output(folder: Path) -> None:
    left = sorted(p.name for p in folder.iterdir())
    assert left == [], f"a failed run left files behind: {left}"


@pytest.mark.parametrize("case", IMAGE_CASES, ids=ids(IMAGE_CASES))
def test_cli_inpaint(case: Case, corpus_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    image_path = case.write(corpus_dir)
    size = case.size or (8, 8)
    mask = centre_mask(size)
    mask_path = tmp_path / "mask.png"
    Image.fromarray(mask).save(mask_path)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "result.png"
    code, err = run_cli(["inpaint", str(image_path), "--mask", str(mask_path), "-o", str(out), "-q"], capsys)
    if not case.opens:
        assert code == 2, err
        assert err.startswith("inpaint-studio: ") and err.count("\n") == 1, err
        assert case.error in assert_one_sentence(err.strip(), image_path)
        assert_no_output(out_dir)
        return
    if mask.min() == 255:  # a 1x1 image: nothing is left to fill from, which the command says
        assert code == 2 and "covers the whole image" in assert_one_sentence(err.strip()), err
        assert_no_output(out_dir)
        return
    assert code == 0, err
    assert_untouched_outside(out, np.asarray(load_image(image_path).image), mask)
    assert sorted(p.name for p in out_dir.iterdir()) == ["result.png"]


@pytest.mark.parametrize("case", MASK_CASES, ids=ids(MASK_CASES))
def test_cli_inpaint_masks(
    case: MaskCase, corpus_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mask_path = case.write(corpus_dir)
    image_path = tmp_path / "photo.png"
    Image.fromarray(photo(48, 32)).save(image_path)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "result.png"
    code, err = run_cli(["inpaint", str(image_path), "--mask", str(mask_path), "-o", str(out), "-q"], capsys)
    if case.error or case.cli_error:
        assert code == 2, err
        assert_one_sentence(err.strip())
        assert (case.error or case.cli_error) in err
        assert_no_output(out_dir)
        return
    assert code == 0, err
    assert_untouched_outside(out, photo(48, 32), np.asarray(load_mask(mask_path, (48, 32))))


# ---- 3. the window ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def studio(qapp: QApplication, tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """One offscreen main window for the whole corpus (opening files one after another, as a user does)."""
    from inpaint_studio.ui.window.main_window import MainWindow

    folder = tmp_path_factory.mktemp("studio")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("INPAINT_STUDIO_RECOVERY_DIR", str(folder / "recovery"))
        window = MainWindow(settings=QSettings(str(folder / "settings.ini"), QSettings.Format.IniFormat))
        window.show()
        yield window
        window.undo_stack.setClean()
        window.close()
        window.deleteLater()
        QApplication.processEvents()


@pytest.mark.parametrize("case", IMAGE_CASES, ids=ids(IMAGE_CASES))
def test_window_open(case: Case, corpus_dir: Path, studio: object) -> None:
    window = studio
    path = case.write(corpus_dir)
    before = (window.document.size, [layer.id for layer in window.document.layers])
    window.message_bar.dismiss()
    with process_deadline(CLI_LIMIT_S):
        opened = window.open_path(path)
        QApplication.processEvents()
    if not case.opens:
        assert not opened
        assert window.message_bar.kind() == "error"
        assert case.error in assert_one_sentence(window.message_bar.text(), path)
        assert (window.document.size, [layer.id for layer in window.document.layers]) == before, "work changed"
    else:
        assert opened, window.message_bar.text()
        assert window.document.size == case.size
        assert window.message_bar.kind() != "error", window.message_bar.text()
        if case.name == "parameters":
            assert window.message_bar.actions_offered() == ["Use these parameters"]
    # Still usable: an edit and its undo work.
    assert window.isEnabled()
    if not window.document.is_empty:
        window.masks.fill()
        assert window.document.mask.min() == 255
        window.undo()
        assert window.document.mask.max() == 0
        window.projects.mark_saved()  # the undone edit stays in the history: no save question next case
