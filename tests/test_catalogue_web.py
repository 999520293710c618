"""Catalogue of issue 29, class 6: the web app and the downloads trust what they read.

Damaged run folders against /api/runs and /api/runs/{run} (one bad run is listed with an error,
the others with their numbers, the JSON always valid), hostile requests to every endpoint (4xx
with a reason, never a traceback), and hostile downloads through the CLI and the API: a mirror
that streams zeros, a claimed 10 GiB, a trickle past the deadline, file:// FIFOs, folders and
devices, an oversized `.part`, a write that fails (exit 2 for a wrong URL or file, 1 for a
download that ran and failed; the disk never filled)."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

pytest.importorskip("starlette")
pytest.importorskip("httpx")
from starlette.testclient import TestClient

import cnnzoo
from _weights_server import HUGE, WeightsServer
from cnnzoo.cache import download as core
from cnnzoo.cache.download import DownloadError, DownloadFailedError, digest_check, download
from cnnzoo.hub import TABLE, WeightsEntry
from cnnzoo.hub.download import MIRROR_ENV
from cnnzoo.modelfile import save_model
from cnnzoo.runfolder import METRICS_FIELDS, METRICS_FILE, MODEL_FILE, write_metrics
from cnnzoo.serve import create_app
from cnnzoo.serve import runs as serve_runs

HISTORY = [{"epoch": 1, "step": 10, "lr": 0.1, "train_loss": 2.3, "train_acc": 0.1, "val_loss": 2.2,
            "val_acc": 0.15, "img_per_s": 100.0, "epoch_time_s": 1.0}]
HEADER = ",".join(METRICS_FIELDS)
N = len(METRICS_FIELDS)


def _row(*cells: str) -> str:
    return HEADER + "\n" + ",".join(cells) + "\n"


def _model(folder: Path, **extra) -> None:
    torch.manual_seed(0)
    save_model(folder / MODEL_FILE, cnnzoo.create_model("lenet5"), **extra)


def _record_text(folder: Path, text: str) -> None:
    """A model file whose record is `text` (raw JSON, possibly broken)."""
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(1)}, str(folder / MODEL_FILE), metadata={"cnnzoo": text})


def _fifo(folder: Path) -> None:
    os.mkfifo(folder / METRICS_FILE)
    _model(folder)


def _symlink_out(folder: Path) -> None:
    secret = folder.parent.parent / "secret.csv"
    secret.write_text("password,hunter2\n")
    (folder / METRICS_FILE).symlink_to(secret)


# name -> (how the run folder is damaged, what the flag says; None: listed without an error)
DAMAGE = {
    "nan-loss": (lambda d: (d / METRICS_FILE).write_text(_row("1", "10", "0.1", "nan", *[""] * (N - 4))),
                 "line 2: train_loss is 'nan'"),
    "inf-acc": (lambda d: (d / METRICS_FILE).write_text(_row("1", "10", "0.1", "2", "inf", *[""] * (N - 5))),
                "train_acc is 'inf'"),
    "extra-fields": (lambda d: (d / METRICS_FILE).write_text(_row(*["1"] * (N + 3))),
                     f"line 2: {N + 3} fields, expected {N}"),
    "missing-fields": (lambda d: (d / METRICS_FILE).write_text(_row("1", "10", "0.1")),
                       f"line 2: 3 fields, expected {N}"),
    "not-utf8": (lambda d: (d / METRICS_FILE).write_bytes(_row(*["1"] * N).encode() + b"\xff\xfe\n"),
                 "not UTF-8"),
    "text-cell": (lambda d: (d / METRICS_FILE).write_text(_row("1", "ten", *["1"] * (N - 2))),
                  "step is 'ten', not a number"),
    "huge-csv": (lambda d: os.truncate(_touch(d / METRICS_FILE), 17 * 2**20), "over 16 MiB"),
    "huge-field": (lambda d: (d / METRICS_FILE).write_text(HEADER + "\n" + "1" * 200_000 + "\n"),
                   "field larger than field limit"),
    "dangling-model": (lambda d: ((d / METRICS_FILE).write_text(_row(*["1"] * N)),
                                  (d / MODEL_FILE).symlink_to(d / "gone.safetensors")),
                       "model.safetensors is a symlink to nothing"),
    "nan-record": (lambda d: _model(d, metrics={"val_loss": math.nan}), "metrics.val_loss = nan"),
    "cut-record": (lambda d: _record_text(d, '{"model": "lenet5", "num_cl'), "not valid JSON"),
    "list-record": (lambda d: _record_text(d, "[1, 2, 3]"), "malformed"),
    "junk-model": (lambda d: (d / MODEL_FILE).write_bytes(b"\x00" * 64), "not a readable safetensors"),
    "metrics-out": (_symlink_out, "leads out of the runs folder"),
    "fifo-metrics": (_fifo, None),  # not a file: not read (a FIFO would block the reader)
}


def _touch(path: Path) -> Path:
    path.write_text(HEADER + "\n")
    return path


@pytest.fixture(scope="module")
def damaged(tmp_path_factory):
    root = tmp_path_factory.mktemp("web")
    runs = root / "runs"
    (runs / "good").mkdir(parents=True)
    write_metrics(runs / "good", HISTORY)
    for name, (damage, _) in DAMAGE.items():
        (runs / name).mkdir()
        damage(runs / name)
    (runs / "a-file").write_text("a file where a run folder would be")
    (runs / "dangling-entry").symlink_to(root / "nowhere")
    app = create_app(runs, models=["lenet5"], cache=root / "cache")  # the playground: never trained
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, runs


def _listing(client) -> dict:
    r = client.get("/api/runs")
    assert r.status_code == 200, r.text
    json.loads(r.text, parse_constant=lambda c: pytest.fail(f"{c} in the JSON"))  # strict JSON
    return {x["name"]: x for x in r.json()["runs"]}


def test_one_good_run_among_damaged_ones_keeps_its_numbers(damaged):
    client, _ = damaged
    runs = _listing(client)
    assert runs["good"]["epochs"] == 1 and runs["good"]["last"]["val_acc"] == 0.15
    assert "error" not in runs["good"]
    assert "a-file" not in runs and "dangling-entry" not in runs


@pytest.mark.parametrize("name", sorted(DAMAGE))
def test_a_damaged_run_is_listed_with_why_and_no_numbers(damaged, name):
    client, _ = damaged
    runs = _listing(client)
    words = DAMAGE[name][1]
    if words is None:
        assert "error" not in runs[name]
        return
    assert words in runs[name]["error"] and runs[name]["epochs"] is None, runs[name]
    assert str(damaged[1]) not in runs[name]["error"]  # no server path in the message
    assert "hunter2" not in runs[name]["error"]


@pytest.mark.parametrize("name", ["nan-loss", "inf-acc", "extra-fields", "missing-fields", "not-utf8",
                                  "text-cell", "huge-csv", "huge-field"])
def test_read_metrics_refuses_what_train_cannot_have_written(damaged, name):
    from cnnzoo.runfolder import MetricsFileError, read_metrics

    with pytest.raises(MetricsFileError, match=DAMAGE[name][1]) as err:
        read_metrics(damaged[1] / name)
    assert err.value.exit_code == 2 and str(err.value).startswith(METRICS_FILE)


@pytest.mark.parametrize("name, code, words", [
    ("nan-loss", 200, "train_loss is 'nan'"), ("nan-record", 200, "metrics.val_loss = nan"),
    ("not-utf8", 200, "not UTF-8"), ("metrics-out", 403, "leads out"), ("a-file", 404, "not a run folder"),
])
def test_a_damaged_run_s_page_says_why_without_a_500(damaged, name, code, words):
    client, _ = damaged
    r = client.get(f"/api/runs/{name}")
    assert r.status_code == code and words in r.json()["error"], r.text
    if code == 200:  # what could be read is still shown
        assert r.json()["metrics"] == [] or r.json()["record"] is None


@pytest.mark.parametrize("method, path, body, code, words", [
    ("GET", "/api/models/lenet5?input=1x99999999999999999999999x9", None, 400, "outside 1 <= side"),
    ("GET", "/api/models/lenet5?input=%FF%FE", None, 400, "CxHxW"),
    ("GET", "/api/runs/" + "a" * 5000, None, 400, "File name too long"),
    ("GET", "/api/runs/good/figure/" + "b" * 5000 + ".png", None, 400, "File name too long"),
    ("GET", "/api/runs/%FF%FE", None, 404, "no "),
    ("GET", "/api/runs/a%00b", None, 400, "empty path"),
    ("GET", "/api/models/lenet5/explain?layer=%FF%00", None, 400, "no layer"),
    ("POST", "/api/playground/lenet", b"[" * 100_000 + b"]" * 100_000, 400, "body must be JSON"),
    ("POST", "/api/playground/lenet", b'{"pixels": "' + b"x" * 2**20 + b'"}', 413, "limit"),
    ("POST", "/api/playground/lenet", b"\xff\xfe\x00", 400, "body must be JSON"),
    ("POST", "/api/runs/nan-record/predict", b"not an image", 415, "not an image"),
    ("POST", "/api/runs/junk-model/predict", b"\x89PNG", 415, "image"),
    ("POST", "/api/runs", b"x", 405, "not allowed"),
])
def test_hostile_requests_are_4xx_with_a_reason(damaged, method, path, body, code, words):
    client, _ = damaged
    r = client.request(method, path, content=body)
    assert r.status_code == code, r.text
    assert words in r.json()["error"] and "Traceback" not in r.text


@pytest.mark.parametrize("pixels", [[[10**400] * 28] * 28, [[1e308 * 10] * 28] * 28, "28x28",
                                    [[[[]]]] * 28, {"a": 1}])
def test_a_drawing_that_is_not_28x28_numbers_is_refused_before_the_model(pixels):
    from cnnzoo.errors import InvalidArgumentError
    from cnnzoo.serve.inference import classify_drawing

    with pytest.raises(InvalidArgumentError, match="pixels must be 28x28 numbers"):
        classify_drawing(None, {}, pixels)


def test_a_bug_is_logged_and_answered_as_one_line_of_json(damaged, monkeypatch, caplog):
    client, _ = damaged

    def broken(runs):
        raise RuntimeError("a bug, not the user's input")

    monkeypatch.setattr(serve_runs, "list_runs", broken)
    with caplog.at_level(logging.ERROR, logger="cnnzoo.serve"):
        r = client.get("/api/runs")
    assert r.status_code == 500 and r.json() == {
        "error": "internal error (RuntimeError); the server's log has the details"}
    assert "Traceback" not in r.text and "a bug" not in r.text
    assert "a bug, not the user's input" in caplog.text  # the traceback went to the log


# -- hostile downloads ---------------------------------------------------------------------
NAME = "lenet5"
BLOB = bytes(range(256)) * 16  # 4 KiB: the 'published' file
SHA = hashlib.sha256(BLOB).hexdigest()


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """A publisher folder holding the file, a table row for it (4 KiB listed), an empty cache."""
    root = tmp_path / "publisher"
    root.mkdir()
    (root / "blob-w.pth").write_bytes(BLOB)
    monkeypatch.setenv("CNNZOO_CACHE", str(tmp_path / "cache"))
    for var in (MIRROR_ENV, core.DEADLINE_ENV):
        monkeypatch.delenv(var, raising=False)

    def row(url: str, size_mb: float | None = len(BLOB) / 2**20) -> None:
        monkeypatch.setitem(TABLE, NAME, [WeightsEntry(NAME, "test", "torchvision", url, SHA,
                                                       size_mb=size_mb, num_classes=10)])

    return root, row, tmp_path / "cache" / "weights"


def _left(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir()) if cache.exists() else []


@pytest.mark.parametrize("mode, words", [("zeros", "sent more than the"),
                                         ("huge", f"announces {HUGE:,} bytes")])
def test_a_mirror_that_sends_too_much_is_cut_off_and_nothing_is_kept(mirror, cli, mode, words):
    root, row, cache = mirror
    with WeightsServer(root) as srv:
        srv.mode = mode
        row(srv.url + "blob-w.pth")
        r = cli("weights", NAME, "--download")
        sent = srv.sent
    assert r.code == 2 and words in r.err, r.err
    assert _left(cache) == [] and sent < 64 * 2**20  # the .part deleted, the disk not filled


def test_a_trickle_trips_the_deadline_and_the_part_is_kept_to_resume(mirror, cli, monkeypatch):
    root, row, cache = mirror
    monkeypatch.setenv(core.DEADLINE_ENV, "1")
    with WeightsServer(root, interval=0.2) as srv:
        srv.mode = "trickle"
        row(srv.url + "blob-w.pth")
        t0 = time.monotonic()
        r = cli("weights", NAME, "--download")
        took = time.monotonic() - t0
        srv.mode = "ok"  # the next run resumes what arrived
        assert r.code == 1 and "deadline of 1 s" in r.err and core.DEADLINE_ENV in r.err, r.err
        assert took < 10 and _left(cache) == ["blob-w.pth.part"]
        have = (cache / "blob-w.pth.part").stat().st_size
        assert cli("weights", NAME, "--download").code == 0
        assert srv.requests[-1][1] == f"bytes={have}-"
    assert (cache / "blob-w.pth").read_bytes() == BLOB


@pytest.mark.parametrize("value", ["abc", "0", "-5", "nan", "inf"])
def test_a_bad_deadline_is_refused_naming_the_variable(mirror, cli, monkeypatch, value):
    root, row, cache = mirror
    monkeypatch.setenv(core.DEADLINE_ENV, value)
    row((root / "blob-w.pth").as_uri())
    r = cli("weights", NAME, "--download")
    assert r.code == 2 and f"{core.DEADLINE_ENV}=" in r.err and "> 0" in r.err
    assert _left(cache) == []


@pytest.mark.parametrize("kind, words", [("fifo", "a FIFO"), ("folder", "a folder"),
                                         ("device", "a character device")])
def test_a_file_mirror_that_is_not_a_regular_file_is_refused_unopened(mirror, cli, monkeypatch,
                                                                      tmp_path, kind, words):
    root, row, cache = mirror
    odd = tmp_path / "odd"
    odd.mkdir()
    target = odd / "blob-w.pth"
    {"fifo": lambda: os.mkfifo(target), "folder": target.mkdir,
     "device": lambda: target.symlink_to("/dev/zero")}[kind]()
    row("https://publisher.invalid/blob-w.pth")
    monkeypatch.setenv(MIRROR_ENV, odd.as_uri())
    t0 = time.monotonic()
    r = cli("weights", NAME, "--download")
    assert r.code == 2 and words in r.err and "not a regular file" in r.err, r.err
    assert time.monotonic() - t0 < 10 and _left(cache) == []


def test_a_file_mirror_over_the_known_size_is_refused_before_reading(mirror, cli, monkeypatch,
                                                                     tmp_path):
    root, row, cache = mirror
    big = tmp_path / "big"
    big.mkdir()
    with open(big / "blob-w.pth", "wb") as f:
        f.truncate(2**30)  # sparse: 1 GiB on the mirror, 4 KiB in the table
    row("https://publisher.invalid/blob-w.pth")
    monkeypatch.setenv(MIRROR_ENV, big.as_uri())
    r = cli("weights", NAME, "--download", "--format", "json")
    assert r.code == 2 and "1,073,741,824 bytes, more than the" in r.err and _left(cache) == []


def test_an_oversized_part_is_deleted_not_resumed(mirror, tmp_path):
    root, _, _ = mirror
    dest = tmp_path / "blob-w.pth"
    with open(tmp_path / "blob-w.pth.part", "wb") as f:
        f.truncate(2**20)  # left by a mirror that streamed zeros before there was a bound
    with WeightsServer(root) as srv:
        download(srv.url + "blob-w.pth", dest, check=digest_check(SHA), max_bytes=2**16)
        assert srv.requests[-1][1] is None  # asked for the whole file, not for 'the rest'
    assert dest.read_bytes() == BLOB and not (tmp_path / "blob-w.pth.part").exists()


def test_without_a_known_size_the_core_s_cap_bounds_the_download(mirror, tmp_path, monkeypatch):
    root, _, _ = mirror
    monkeypatch.setattr(core, "MAX_BYTES", 2**20)
    with WeightsServer(root) as srv:
        srv.mode = "zeros"
        with pytest.raises(DownloadError, match="more than the 1,048,576 bytes") as err:
            download(srv.url + "blob-w.pth", tmp_path / "blob-w.pth")
    assert err.value.exit_code == 2 and list(tmp_path.glob("blob-w*")) == []


def test_a_destination_that_cannot_be_written_is_a_message_not_a_traceback(mirror, tmp_path):
    root, _, _ = mirror
    (tmp_path / "a-file").write_text("not a folder")
    with pytest.raises(DownloadError, match="cannot write .*a-file/blob-w.pth.part: Not a directory"):
        download((root / "blob-w.pth").as_uri(), tmp_path / "a-file" / "blob-w.pth")


def test_the_api_s_deadline_is_a_failed_job(mirror, tmp_path):
    root, _, _ = mirror
    with WeightsServer(root, interval=0.2) as srv:
        srv.mode = "trickle"
        with pytest.raises(DownloadFailedError, match="within its deadline of 0.5 s") as err:
            download(srv.url + "blob-w.pth", tmp_path / "blob-w.pth", deadline=0.5)
    assert err.value.exit_code == 1


_FSIZE = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
resource.setrlimit(resource.RLIMIT_FSIZE, (1024, 1024))
from cnnzoo.cli import main
main(["weights", "lenet5", "--download"])
"""


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_FSIZE and SIGXFSZ: Linux")
def test_a_write_that_fails_mid_download_is_a_failed_job_and_leaves_nothing(tmp_path):
    """A file-size limit (what a full disk does to a writer, without a full disk): exit 1, the
    file and the free space named, no .part left. The row is injected through sitecustomize."""
    root = tmp_path / "publisher"
    root.mkdir()
    (root / "blob-w.pth").write_bytes(BLOB)
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(
        "from cnnzoo.hub import TABLE, WeightsEntry\n"
        f"TABLE['lenet5'] = [WeightsEntry('lenet5', 'test', 'torchvision', "
        f"{(root / 'blob-w.pth').as_uri()!r}, {SHA!r}, num_classes=10)]\n")
    src = Path(cnnzoo.__file__).parents[1]
    env = {**os.environ, "CNNZOO_CACHE": str(tmp_path / "cache"),
           "PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), str(src)])}
    env.pop(MIRROR_ENV, None)
    r = subprocess.run([sys.executable, "-c", _FSIZE], env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 1, r.stderr
    assert "could not write" in r.stderr and "MiB free there" in r.stderr
    assert "Traceback" not in r.stderr and _left(tmp_path / "cache" / "weights") == []
