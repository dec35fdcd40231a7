"""Security: nothing is unpickled unless the user explicitly allows a legacy checkpoint, no remote code is ever
trusted, files are parsed as data with limits, and nothing listens on the network.

The pickles here are hostile: unpickling them opens (creates) a marker file. A refusal must leave no marker,
which proves nothing was unpickled, not merely that an error came out.
"""

from __future__ import annotations

import ast
import json
import os
import pickle
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from inpaint_studio import cli
from inpaint_studio.cli.chain import read_recipe
from inpaint_studio.core.errors import BadInputError, ModelUnavailableError
from inpaint_studio.core.jobspec import InpaintJob
from inpaint_studio.core.project import load_project, save_project
from inpaint_studio.engine.models import resolve_model
from tests.hardening.corpus import make_project, photo

PACKAGE = Path(__file__).resolve().parents[2] / "inpaint_studio"


class OpensAFile:
    """Unpickling this calls open(marker, "w"): the way a hostile pickle runs code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.marker), "w"))


def hostile_checkpoint(path: Path, marker: Path) -> Path:
    """A torch.save zip checkpoint whose state_dict holds the hostile object."""
    import torch

    torch.save({"state_dict": {"payload": OpensAFile(marker)}}, path)
    assert not marker.exists()
    return path


def box_mask(width: int = 64, height: int = 64) -> np.ndarray:
    mask = np.zeros((height, width), np.uint8)
    mask[20:44, 20:44] = 255
    return mask


# ---- pickled checkpoints -------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".ckpt", ".pt", ".pth", ".bin"])
def test_a_pickle_is_refused_without_the_opt_in_and_nothing_runs(tmp_path: Path, suffix: str) -> None:
    marker = tmp_path / "pwned"
    path = hostile_checkpoint(tmp_path / f"model{suffix}", marker)
    with pytest.raises(ModelUnavailableError) as refused:
        resolve_model(str(path))
    assert "hidden code" in str(refused.value)
    if suffix != ".bin":  # the one kind the opt-in can load says how
        assert "--allow-unsafe-checkpoint" in str(refused.value)
    assert not marker.exists()


def test_the_command_line_refuses_a_pickle_without_the_flag(tmp_path: Path, capsys) -> None:
    marker = tmp_path / "pwned"
    model = hostile_checkpoint(tmp_path / "model.ckpt", marker)
    image, mask = tmp_path / "photo.png", tmp_path / "mask.png"
    Image.fromarray(photo(64, 64)).save(image)
    Image.fromarray(box_mask()).save(mask)
    out = tmp_path / "out.png"
    code = cli.main(["inpaint", str(image), "--mask", str(mask), "-o", str(out), "--model", str(model), "-q"])
    assert code == 3 and "--allow-unsafe-checkpoint" in capsys.readouterr().err
    assert not marker.exists() and not out.exists()


def test_even_with_the_opt_in_a_pickle_that_runs_code_is_refused(tmp_path: Path) -> None:
    """The opt-in reads weights only (torch's restricted unpickler): code in the pickle is refused, not run."""
    marker = tmp_path / "pwned"
    path = hostile_checkpoint(tmp_path / "model.ckpt", marker)
    with pytest.raises(ModelUnavailableError) as refused:
        resolve_model(str(path), allow_unsafe=True)
    assert "holds more than weights" in str(refused.value)
    assert not marker.exists()


@pytest.fixture(scope="module")
def legacy_checkpoint(tiny_sd_inpaint_single_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny single-file model saved the legacy way (torch.save, a 'state_dict' inside), configs beside it."""
    import torch
    from safetensors.torch import load_file

    from tests.tiny_models import single_file_config_dir

    folder = tmp_path_factory.mktemp("legacy")
    shutil.copytree(single_file_config_dir(tiny_sd_inpaint_single_file), folder / "config")
    path = folder / "tiny-sd-inpainting.ckpt"
    torch.save({"state_dict": load_file(str(tiny_sd_inpaint_single_file)), "global_step": 1}, path)
    return path


def test_the_command_line_opt_in_loads_a_legacy_checkpoint_and_says_so(
    legacy_checkpoint: Path, tmp_path: Path, capsys
) -> None:
    image, mask = tmp_path / "photo.png", tmp_path / "mask.png"
    Image.fromarray(photo(64, 64)).save(image)
    Image.fromarray(box_mask()).save(mask)
    out = tmp_path / "out.png"
    args = ["inpaint", str(image), "--mask", str(mask), "-o", str(out), "--model", str(legacy_checkpoint)]
    args += ["--steps", "2", "--seed", "1", "--padding", "8", "-q", "--allow-unsafe-checkpoint"]
    code = cli.main(args)
    err = capsys.readouterr().err
    assert code == 0, err
    assert "loaded the pickled checkpoint" in err and "--allow-unsafe-checkpoint" in err
    assert Image.open(out).size == (64, 64)


def test_the_studio_asks_before_trusting_a_pickle_and_records_the_answer(
    qtbot, tmp_path: Path, legacy_checkpoint: Path, hardening_engine: Any, monkeypatch
) -> None:
    from PySide6.QtWidgets import QMessageBox

    from inpaint_studio.core.user_models import UserModels
    from inpaint_studio.ui.engine_thread.worker import EngineWorker
    from inpaint_studio.ui.window.composition import EngineOptions
    from tests.hardening.conftest import studio_window

    asked: list[str] = []
    answer = [QMessageBox.StandardButton.No]

    def warning(_parent: Any, _title: str, text: str, *_args: Any) -> Any:
        asked.append(text)
        return answer[0]

    monkeypatch.setattr(QMessageBox, "warning", warning)
    worker = EngineWorker(engine_factory=lambda: hardening_engine)
    engine = EngineOptions(worker=worker, owns_worker=True, warm_up_delay_ms=None)
    with studio_window(tmp_path, engine=engine) as window:
        controller = window.generation
        panel = controller.panel
        errors: list[str] = []
        panel.models.add_model_failed.connect(errors.append)
        reference = str(legacy_checkpoint)

        # Named by data (a project, a history entry): refused without asking.
        assert not panel.select_model(reference) and asked == []
        # "Add model file…", answered No: refused, nothing recorded.
        assert not panel.models.add_local_model(reference, ask_unsafe=True)
        assert len(asked) == 1 and "pickled checkpoint" in asked[0] and errors
        recorded = UserModels.load()
        assert recorded.unsafe_allowed == [] and reference not in recorded.paths
        # Answered Yes: recorded (the user's model list), selectable, and a job with it runs.
        answer[0] = QMessageBox.StandardButton.Yes
        assert panel.models.add_local_model(reference, ask_unsafe=True)
        assert UserModels.load().unsafe_allowed == [reference]
        assert panel.model_reference() == reference
        window.open_image(Image.fromarray(photo(64, 64)), "photo")
        job = InpaintJob(model=reference, prompt="x", steps=2, seed=1, padding_px=8)
        with qtbot.waitSignal(worker.job_finished, timeout=60_000) as finished:
            controller.submit(job, window.document.composite(), box_mask())
        assert finished.args[0].result.model["source"] == "legacy_checkpoint"
        window.projects.mark_saved()


# ---- no remote code ----------------------------------------------------------------------------------------------

LOADING_CALLS = {"from_pretrained", "from_single_file", "from_pipe", "snapshot_download", "hf_hub_download", "load"}
FORBIDDEN = {"trust_remote_code", "custom_pipeline", "custom_revision"}


def _calls() -> list[tuple[Path, ast.Call]]:
    out = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                out.append((path, node))
    return out


def _name(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def test_no_loading_call_trusts_remote_code() -> None:
    """Every loading call in the package, read from its source: no trust_remote_code / custom_pipeline anywhere
    (as a keyword, or as a key in the option dicts the calls receive), and torch.load only weights-only."""
    loading = [(path, call) for path, call in _calls() if _name(call) in LOADING_CALLS]
    assert len(loading) >= 8, "the audit no longer sees the loading calls"
    for path, call in loading:
        where = f"{path.name}:{call.lineno}"
        assert not {k.arg for k in call.keywords} & FORBIDDEN, where
        if _name(call) == "load" and ast.unparse(call.func) == "torch.load":
            weights_only = next((k for k in call.keywords if k.arg == "weights_only"), None)
            assert weights_only is not None and ast.unparse(weights_only.value) == "True", where
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            keys: list[Any] = []
            if isinstance(node, ast.Dict):
                keys = node.keys
            elif isinstance(node, ast.Call) and _name(node) in ("dict", "update"):
                keys = [ast.Constant(k.arg) for k in node.keywords]
            elif isinstance(node, ast.Subscript):
                keys = [node.slice]
            for key in keys:
                assert not (isinstance(key, ast.Constant) and key.value in FORBIDDEN), f"{path.name}:{node.lineno}"


def test_loading_uses_local_safetensors_only(
    tiny_sd_inpaint: Path, tiny_controlnet: Path, tiny_sd_inpaint_single_file: Path, monkeypatch
) -> None:
    """Spy on diffusers' loading entry points during real jobs: safetensors only, local files only."""
    import diffusers

    from inpaint_studio.engine.runner import Engine

    seen: list[tuple[str, dict[str, Any]]] = []

    def spy(owner: Any, name: str) -> None:
        original = getattr(owner, name).__func__

        def wrapped(cls: Any, *args: Any, **kwargs: Any) -> Any:
            seen.append((f"{cls.__name__}.{name}", kwargs))
            return original(cls, *args, **kwargs)

        monkeypatch.setattr(owner, name, classmethod(wrapped))

    spy(diffusers.AutoPipelineForInpainting, "from_pretrained")
    spy(diffusers.ControlNetModel, "from_pretrained")
    spy(diffusers.StableDiffusionInpaintPipeline, "from_single_file")
    engine = Engine()
    try:
        for model, extra in (
            (tiny_sd_inpaint, {"controlnet": str(tiny_controlnet)}),
            (tiny_sd_inpaint_single_file, {}),
        ):
            job = InpaintJob(model=str(model), prompt="x", steps=2, seed=1, padding_px=8, **extra)
            engine.run(job, photo(64, 64), box_mask())
    finally:
        engine.release()
    names = {name for name, _ in seen}
    assert names == {
        "AutoPipelineForInpainting.from_pretrained",
        "ControlNetModel.from_pretrained",
        "StableDiffusionInpaintPipeline.from_single_file",
    }
    for name, kwargs in seen:
        assert kwargs.get("use_safetensors") is True and kwargs.get("local_files_only") is True, (name, kwargs)
        assert not set(kwargs) & FORBIDDEN, (name, kwargs)


def test_a_model_folder_with_only_pickled_weights_is_refused_and_nothing_runs(
    tiny_sd_inpaint: Path, tmp_path: Path
) -> None:
    from inpaint_studio.engine.runner import Engine

    folder = tmp_path / "model"
    shutil.copytree(tiny_sd_inpaint, folder)
    marker = tmp_path / "pwned"
    for weights in (folder / "unet").glob("*.safetensors"):
        weights.unlink()
    with open(folder / "unet" / "diffusion_pytorch_model.bin", "wb") as fh:
        pickle.dump(OpensAFile(marker), fh)
    engine = Engine()
    with pytest.raises(ModelUnavailableError, match="no .safetensors weights"):
        engine.run(InpaintJob(model=str(folder), steps=2, seed=1), photo(64, 64), box_mask())
    engine.release()
    assert not marker.exists()


def test_a_model_folder_with_custom_code_is_refused_and_its_code_never_runs(
    tiny_sd_inpaint: Path, tmp_path: Path
) -> None:
    """A component naming a Python module shipped in the folder (diffusers' custom components)."""
    from inpaint_studio.engine.runner import Engine

    folder = tmp_path / "model"
    shutil.copytree(tiny_sd_inpaint, folder)
    marker = tmp_path / "pwned"
    (folder / "unet" / "my_unet.py").write_text(f"open({str(marker)!r}, 'w').close()\nfrom diffusers import *\n")
    (folder / "my_unet.py").write_text((folder / "unet" / "my_unet.py").read_text())
    index = json.loads((folder / "model_index.json").read_text())
    index["unet"] = ["my_unet", "UNet2DConditionModel"]
    (folder / "model_index.json").write_text(json.dumps(index))
    engine = Engine()
    try:
        with pytest.raises(ModelUnavailableError, match="own Python code, which this app never runs"):
            engine.run(InpaintJob(model=str(folder), steps=2, seed=1), photo(64, 64), box_mask())
    finally:
        engine.release()
    assert not marker.exists()


# ---- files are data, with limits --------------------------------------------------------------------------------


def _zip(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return path


def _project_entries(tmp_path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(save_project(make_project(), tmp_path / "seed.inpaint")) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


@pytest.mark.parametrize(
    ("case", "phrase"),
    [
        ("deeply nested manifest", "not valid JSON"),
        ("zip bomb entry", "compressed"),
        ("pickle in the manifest", "not valid JSON"),
        ("path outside", "points outside"),
    ],
)
def test_hostile_projects_are_refused_as_data(tmp_path: Path, case: str, phrase: str) -> None:
    entries = _project_entries(tmp_path)
    if case == "deeply nested manifest":
        entries["manifest.json"] = b"[" * 200_000 + b"]" * 200_000
    elif case == "zip bomb entry":
        entries["layers/bomb.png"] = bytes(300 * 2**20)  # 300 MB of zeros deflate to about 300 KB
    elif case == "pickle in the manifest":
        entries["manifest.json"] = pickle.dumps(OpensAFile(tmp_path / "pwned"))
    else:
        entries["../outside.png"] = b"x"
    path = _zip(tmp_path / "hostile.inpaint", entries)
    with pytest.raises(BadInputError) as refused:
        load_project(path)
    assert phrase in str(refused.value) and "hostile.inpaint" in str(refused.value)
    assert not (tmp_path / "pwned").exists() and not (tmp_path.parent / "outside.png").exists()


def test_hostile_recipes_are_refused_as_data(tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(BadInputError, match="nests its brackets too deeply"):
        read_recipe(deep)
    typed = tmp_path / "typed.json"
    recipe = {"format": "inpaint-studio/chain", "version": 1, "steps": [{"job": {"steps": "30; rm -rf /"}}]}
    typed.write_text(json.dumps(recipe))
    from inpaint_studio.engine.chain import Chain

    with pytest.raises(BadInputError, match="must be a whole number"):
        Chain.from_dict(read_recipe(typed))


def test_openraster_entity_expansion_is_refused(tmp_path: Path) -> None:
    """A 'billion laughs' stack.xml: expat refuses the expansion, the import says the file is damaged."""
    from inpaint_studio.core.ora import import_ora

    laughs = '<!DOCTYPE image [<!ENTITY a "ha">' + "".join(
        f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(9)
    )
    xml = f'<?xml version="1.0"?>{laughs}]><image w="8" h="8" name="&j;"><stack/></image>'
    path = _zip(tmp_path / "laughs.ora", {"mimetype": b"image/openraster", "stack.xml": xml.encode()})
    with pytest.raises(BadInputError, match="not valid XML"):
        import_ora(path)


def test_a_damaged_recovery_note_is_skipped_at_start_up(tmp_path: Path) -> None:
    from inpaint_studio.core.recovery import find_recoverable

    folder = tmp_path / "recovery"
    folder.mkdir()
    for name, note in {
        "deep": "[" * 200_000 + "]" * 200_000,
        "huge-pid": json.dumps({"pid": 10**30}),
        "bad-time": json.dumps({"pid": 999_999_999, "saved_at": "yesterday"}),
        "list": json.dumps([1, 2]),
    }.items():
        (folder / f"{name}.json").write_text(note)
        save_project(make_project(), folder / f"{name}.inpaint")
    assert find_recoverable(folder) == []


# ---- nothing listens --------------------------------------------------------------------------------------------


def listening_sockets(pid: int | str = "self") -> list[str]:
    """TCP sockets in LISTEN and bound UDP sockets owned by a process, from /proc (no psutil)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = []
    for table, wanted in (("tcp", "0A"), ("tcp6", "0A"), ("udp", "07"), ("udp6", "07")):
        path = Path(f"/proc/{pid}/net/{table}")
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == wanted and fields[9] in inodes:
                found.append(f"{table} {fields[1]}")
    return found


@pytest.mark.skipif(not Path("/proc/self/net/tcp").exists(), reason="needs Linux /proc")
def test_the_running_app_listens_on_no_port(tmp_path: Path) -> None:
    """Start the studio (offscreen), load the engine, run a job and an autosave; then list its sockets."""
    image = tmp_path / "photo.png"
    Image.fromarray(photo(64, 64)).save(image)
    script = textwrap.dedent(
        f"""
        import os, sys
        from pathlib import Path
        import numpy as np
        from PySide6.QtCore import QTimer
        from PySide6.QtWidgets import QApplication
        from inpaint_studio.core.jobspec import InpaintJob
        from inpaint_studio.ui import app
        sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
        from tests.hardening.test_security import listening_sockets

        app.create_application()
        def drive():
            window = next(w for w in QApplication.topLevelWidgets() if type(w).__name__ == "MainWindow")
            if window.document.is_empty:
                QTimer.singleShot(50, drive)
                return
            worker = window.generation.worker
            def finished(_event):
                window.autosave.autosave_now()
                window.projects.wait_idle(30)
                print("SOCKETS", listening_sockets(), flush=True)
                window.projects.mark_saved()
                window.close()
            worker.job_finished.connect(finished)
            mask = np.zeros((64, 64), np.uint8)
            mask[10:30, 10:30] = 255
            window.generation.submit(InpaintJob(model="classic"), window.document.composite(), mask)
        QTimer.singleShot(100, drive)
        sys.exit(app.run_gui([{str(image)!r}]))
        """
    )
    env = dict(
        os.environ,
        INPAINT_STUDIO_RECOVERY_DIR=str(tmp_path / "recovery"),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        QT_QPA_PLATFORM="offscreen",
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(line for line in done.stdout.splitlines() if line.startswith("SOCKETS"))
    assert line == "SOCKETS []", line


def test_the_socket_audit_sees_a_listening_socket() -> None:
    """The check above can fail: a socket listening in this process is found."""
    import socket

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        assert any(entry.startswith("tcp ") for entry in listening_sockets())
