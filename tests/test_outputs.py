"""The output guard (cnnzoo.outputs): no verb and no library writer puts its output onto its own
input, onto a training run's own files, over an existing file unless told, or where no file can
be written; each refusal is exit 2 with a message saying why, before any work, files untouched."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest
import torch

import cnnzoo
from cnnzoo.outputs import TEMP_NAME_ROOM, OutputError, check_output, check_output_folder, run_folder_of


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def model_file(tmp_path) -> Path:
    path = tmp_path / "m.safetensors"
    cnnzoo.save_model(path, cnnzoo.create_model("lenet5"))
    return path


@pytest.fixture
def run(tmp_path, model_file) -> Path:
    """A folder that looks to the guard as a finished run does: its model file and metrics.csv."""
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(model_file.read_bytes())
    (folder / "metrics.csv").write_text("epoch,step\n1,10\n")
    (folder / "checkpoint.safetensors").write_bytes(b"state")
    return folder


# -- the guard itself -----------------------------------------------------------------------------
def test_a_new_file_in_a_new_folder_may_be_written(tmp_path):
    assert check_output(tmp_path / "a" / "b" / "x.onnx") == tmp_path / "a" / "b" / "x.onnx"


def test_an_existing_file_needs_overwrite(tmp_path):
    target = tmp_path / "x.png"
    target.write_text("mine")
    with pytest.raises(OutputError, match="exists; add overwrite=True"):
        check_output(target)
    with pytest.raises(OutputError, match="exists; add --overwrite to replace it, or choose another --out"):
        check_output(target, label="--out", flag="--overwrite")
    assert check_output(target, overwrite=True) == target
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "nowhere")
    with pytest.raises(OutputError, match="exists"):
        check_output(dangling)


@pytest.mark.parametrize("spell", ["same", "dotted", "symlink", "hardlink"])
def test_never_onto_its_own_input_by_any_spelling(tmp_path, spell):
    src = tmp_path / "in.safetensors"
    src.write_bytes(b"weights")
    target = {"same": src, "dotted": tmp_path / "." / ".." / tmp_path.name / "in.safetensors",
              "symlink": tmp_path / "link", "hardlink": tmp_path / "hard"}[spell]
    if spell == "symlink":
        target.symlink_to(src)
    if spell == "hardlink":
        os.link(src, target)
    with pytest.raises(OutputError, match="own input"):
        check_output(target, inputs=[src], overwrite=True)


def test_an_input_brings_its_companions(tmp_path, run):
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"graph")
    Path(f"{onnx}.data").write_bytes(b"external")
    with pytest.raises(OutputError, match="own input"):
        check_output(f"{onnx}.data", inputs=[onnx], overwrite=True)
    with pytest.raises(OutputError, match=r"own input \(metrics.csv, part of"):
        check_output(run / "metrics.csv", inputs=[run], overwrite=True)
    # names that are no path (a model name) and unset options are no inputs
    assert check_output(tmp_path / "new.onnx", inputs=["lenet5", None])


@pytest.mark.parametrize("name", ["model.safetensors", "checkpoint.safetensors", "metrics.csv",
                                  "training_curves.png", ".cnnzoo-train.lock", "tensorboard/events.out"])
def test_never_onto_a_run_folders_own_files_even_with_overwrite(run, name):
    with pytest.raises(OutputError, match="training run"):
        check_output(run / name, overwrite=True)
    assert run_folder_of(run / name) == run.absolute()


def test_a_link_to_a_run_file_is_a_run_file(tmp_path, run):
    link = tmp_path / "innocent.safetensors"
    link.symlink_to(run / "model.safetensors")
    with pytest.raises(OutputError, match="training run"):
        check_output(link, overwrite=True)


def test_a_folder_holding_only_a_model_file_is_no_run(tmp_path, model_file):
    """finetune --out ft/model.safetensors may be replaced with --overwrite."""
    folder = tmp_path / "ft"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(model_file.read_bytes())
    assert run_folder_of(folder / "model.safetensors") is None
    assert check_output(folder / "model.safetensors", overwrite=True)
    # other names in a run folder are the user's to write
    assert check_output(folder / "confusion.png")


@pytest.mark.parametrize("case,words", [
    ("folder", "is a folder"), ("under a file", "which is a file"), ("device", "not a regular file"),
    ("fifo", "not a regular file"), ("long name", f"at most {255 - TEMP_NAME_ROOM} bytes"),
    ("long folder", "over the file system's limit"), ("long path", "too long"), ("nul", "NUL"),
    ("empty", "not a file name"), ("trailing slash", "names a folder")])
def test_where_no_file_can_be_written(tmp_path, case, words):
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    if case == "fifo":
        os.mkfifo(tmp_path / "fifo")
    target = {"folder": str(tmp_path), "under a file": str(plain / "x.png"), "device": os.devnull,
              "fifo": str(tmp_path / "fifo"), "long name": str(tmp_path / ("n" * 230 + ".png")),
              "long folder": str(tmp_path / ("d" * 300) / "x.png"),
              "long path": str(tmp_path / "/".join(["p" * 200] * 25) / "x.png"), "nul": "a\x00b",
              "empty": "", "trailing slash": str(tmp_path / "new") + "/"}[case]
    with pytest.raises(OutputError, match=words):
        check_output(target, overwrite=True)
    assert plain.read_text() == "x"


def test_a_name_at_the_limit_is_written(tmp_path):
    """The longest name the guard allows leaves room for the temporary name beside it."""
    from cnnzoo.files import atomic_write_text

    target = tmp_path / ("n" * (255 - TEMP_NAME_ROOM - 4) + ".png")
    atomic_write_text(check_output(target), "ok")
    assert target.read_text() == "ok"


def _as_nobody(fn) -> tuple[object, str]:
    """fn() with `nobody` as the effective user (root stays the real and saved one, so the test
    gets its rights back); what it returned, or the OutputError's message / the SystemExit code."""
    os.setegid(65534)
    os.seteuid(65534)
    try:
        return fn(), ""
    except OutputError as err:
        return 2, str(err)
    except SystemExit as err:
        return err.code, ""
    finally:
        os.seteuid(0)
        os.setegid(0)


@pytest.fixture
def shared_dir():
    """A folder any user may enter (pytest's tmp_path is root's alone), with a read-only one in it."""
    import shutil
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="cnnzoo-outputs-", dir="/tmp"))
    root.chmod(0o755)
    (root / "ro").mkdir()
    (root / "ro").chmod(0o555)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def test_a_read_only_folder_is_refused(shared_dir):
    target = shared_dir / "ro" / "x.png"
    if os.geteuid() != 0:
        with pytest.raises(OutputError, match="not writable by this user"):
            check_output(target)
        return
    code, text = _as_nobody(lambda: check_output(target))
    assert code == 2 and "not writable by this user" in text, text
    assert check_output(target)  # root may write there


def test_a_read_only_file_system_is_refused(tmp_path):
    mnt = tmp_path / "ro-fs"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(mnt)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a read-only tmpfs here: {done.stderr.decode().strip()}")
    try:
        with pytest.raises(OutputError, match="read-only file system"):
            check_output(mnt / "x.onnx")
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def test_an_output_folder(tmp_path, run):
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    with pytest.raises(OutputError, match="is a file; it must be a folder"):
        check_output_folder(plain, ["e.json"])
    with pytest.raises(OutputError, match="training run"):
        check_output_folder(run, ["e.json"], overwrite=True)
    (tmp_path / "e.json").write_text("{}")
    with pytest.raises(OutputError, match="exists"):
        check_output_folder(tmp_path, ["e.json"])
    assert check_output_folder(tmp_path, ["e.json"], overwrite=True) == tmp_path


# -- the library ----------------------------------------------------------------------------------
def test_export_model_obeys_the_guard(tmp_path, run):
    from cnnzoo.deploy.export import export_model

    model = cnnzoo.create_model("lenet5")
    mine = tmp_path / "m.pt"
    mine.write_bytes(b"mine")
    with pytest.raises(OutputError, match="exists"):
        export_model(model, mine, "torchscript")
    assert mine.read_bytes() == b"mine"
    before = _digest(run / "model.safetensors")
    with pytest.raises(OutputError, match="training run"):
        export_model(model, run / "model.safetensors", "torchscript", overwrite=True)
    assert _digest(run / "model.safetensors") == before
    assert export_model(model, mine, "torchscript", overwrite=True)["out"] == str(mine)
    assert mine.read_bytes() != b"mine"


def test_quantize_model_refuses_before_loading(tmp_path, model_file):
    from cnnzoo.deploy.quantize import quantize_model

    (tmp_path / "m.int8.onnx").write_bytes(b"mine")
    with pytest.raises(OutputError, match="exists"):
        quantize_model(model_file, "dynamic")
    with pytest.raises(OutputError, match="own input"):
        quantize_model(model_file, "dynamic", out=model_file, overwrite=True)


def test_save_features_and_probe_obey_the_guard(tmp_path, model_file, run):
    from cnnzoo.transfer.core import LinearProbe
    from cnnzoo.transfer.featfile import save_features, save_probe

    f, y = torch.randn(4, 3), torch.tensor([0, 1, 0, 1])
    before = _digest(model_file)
    with pytest.raises(OutputError, match="own input"):
        save_features(model_file, f, y, overwrite=True, model_file=str(model_file))
    with pytest.raises(OutputError, match="training run"):
        save_features(run / "checkpoint.safetensors", f, y, overwrite=True)
    assert _digest(model_file) == before
    out = tmp_path / "f.safetensors"
    save_features(out, f, y, model_file=str(model_file))
    with pytest.raises(OutputError, match="exists"):
        save_features(out, f, y)
    save_features(out, f, y, overwrite=True)
    with pytest.raises(OutputError, match="own input"):
        save_probe(out, LinearProbe(3, 2), {}, inputs=[out], overwrite=True)


def test_visual_savers_obey_the_guard(tmp_path, run):
    from cnnzoo.visual.visualize import save_filters

    model = cnnzoo.create_model("lenet5")
    mine = tmp_path / "f.png"
    mine.write_bytes(b"mine")
    with pytest.raises(OutputError, match="exists"):
        save_filters(model, mine)
    with pytest.raises(OutputError, match="training run"):
        save_filters(model, run / "training_curves.png", overwrite=True)
    save_filters(model, mine, overwrite=True)
    assert mine.read_bytes()[:4] == b"\x89PNG"


def test_run_experiment_refuses_a_finished_experiment(tmp_path):
    from cnnzoo.experiments import run_experiment

    (tmp_path / "stacked-3x3.json").write_text("{}")
    with pytest.raises(OutputError, match="exists"):
        run_experiment("stacked-3x3", size="smoke", out=tmp_path)
    assert (tmp_path / "stacked-3x3.json").read_text() == "{}"


# -- the command line -----------------------------------------------------------------------------
def test_export_never_onto_its_input_and_its_default_needs_overwrite(cli, tmp_path, model_file):
    before = _digest(model_file)
    r = cli("export", model_file, "--to", "torchscript", "--out", model_file, "--overwrite")
    assert r.code == 2 and "own input" in r.err
    beside = tmp_path / "m.pt"
    beside.write_bytes(b"mine")
    r = cli("export", model_file, "--to", "torchscript")
    assert r.code == 2 and "--out" in r.err and "--overwrite" in r.err
    assert beside.read_bytes() == b"mine" and _digest(model_file) == before
    r = cli("export", model_file, "--to", "torchscript", "--overwrite")
    assert r.code == 0 and beside.read_bytes() != b"mine"


def test_cli_outputs_onto_a_run_are_refused(cli, run, tmp_path):
    before = {p.name: _digest(p) for p in run.iterdir()}
    for argv in (["export", run, "--out", run / "metrics.csv", "--overwrite"],
                 ["features", run, "--out", run / "checkpoint.safetensors", "--overwrite"],
                 ["visualize", "filters", run, "-o", run / "training_curves.png"],
                 ["eval", run, "--plot-confusion", run / "model.safetensors", "--overwrite"],
                 ["summary", "lenet5", "--plot", run / "training_curves.png", "--overwrite"],
                 ["convert", run / "model.safetensors", run / "checkpoint.safetensors", "--model", "lenet5",
                  "--overwrite"]):
        r = cli(*argv)
        assert r.code == 2, (argv, r.err)
        assert "own input" in r.err or "training run" in r.err, r.err
    assert {p.name: _digest(p) for p in run.iterdir()} == before


def test_occlusion_default_out_needs_overwrite(cli, tmp_path, model_file, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("occlusion.png").write_bytes(b"mine")
    r = cli("visualize", "occlusion", model_file, "photo.png")
    assert r.code == 2 and "occlusion.png exists" in r.err
    assert Path("occlusion.png").read_bytes() == b"mine"


def test_features_out_a_folder_or_too_long(cli, tmp_path, model_file):
    r = cli("features", model_file, "--out", tmp_path)
    assert r.code == 2 and "is a folder" in r.err
    r = cli("features", model_file, "--out", tmp_path / ("f" * 300 + ".safetensors"))
    assert r.code == 2 and "bytes" in r.err


def test_summary_plot_existing_and_overwrite(cli, tmp_path):
    plot = tmp_path / "p.png"
    plot.write_bytes(b"mine")
    r = cli("summary", "lenet5", "--plot", plot)
    assert r.code == 2 and "--overwrite" in r.err and plot.read_bytes() == b"mine"
    r = cli("summary", "lenet5", "--plot", plot, "--overwrite")
    assert r.code == 0 and plot.read_bytes()[:4] == b"\x89PNG"


def test_bench_and_experiment_refuse_before_running(cli, tmp_path):
    res = tmp_path / "bench.json"
    res.write_text("earlier")
    r = cli("bench", "models", "--quick", "--out", res)
    assert r.code == 2 and "exists" in r.err and res.read_text() == "earlier"
    r = cli("experiment", "stacked-3x3", "--quick", "--out", res)
    assert r.code == 2 and "must be a folder" in r.err


def test_cli_read_only_folder_is_a_clear_error(shared_dir, model_file, cli):
    """Issue 29: as a non-root user, a read-only output folder was a PermissionError traceback."""
    if os.geteuid() != 0:
        pytest.skip("needs root to act as another user")
    src = shared_dir / "m.safetensors"
    src.write_bytes(model_file.read_bytes())
    src.chmod(0o644)
    taken = shared_dir / "taken.png"
    taken.write_bytes(b"mine")
    for argv in (["export", src, "--out", "{ro}/m.onnx"], ["features", src, "--out", "{ro}/f.safetensors"],
                 ["visualize", "filters", src, "-o", "{ro}/f.png"], ["eval", src, "--plot-confusion", "{ro}/c.png"]):
        # the same path once as root onto an existing file: the modules it imports are loaded
        # (nobody may not read this machine's Python installation)
        assert cli(*argv[:-1], taken).code == 2
        argv = [str(a).replace("{ro}", str(shared_dir / "ro")) for a in argv]
        r, _ = _as_nobody(lambda argv=argv: cli(*argv))  # cli() fails on a traceback
        assert r.code == 2 and "not writable by this user" in r.err, (argv, r)
    assert list((shared_dir / "ro").iterdir()) == []
