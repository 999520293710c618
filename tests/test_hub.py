"""Published weights by name, offline: a test-made weights file behind a local HTTP server
(127.0.0.1) or a file:// mirror, with a table entry injected for it. Success, checksum
mismatch, truncated transfer and resume, HTTP errors, connection refused, mirrors, cache hits
without a network, the class names and preprocessing attached, and the CLI's exit codes."""

from __future__ import annotations

import hashlib
import json
import socket

import pytest
import torch
from PIL import Image

import cnnzoo
from _weights_server import WeightsServer
from cnnzoo.data.preprocess import IMAGENET_MEAN, IMAGENET_STD
from cnnzoo.hub import TABLE, WeightsDownloadError, WeightsEntry, fetch
from cnnzoo.hub.download import MIRROR_ENV

NAME = "mobilenet_v1_025"  # 0.47M parameters with 1000 classes: a 1.9 MB file


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """A 'published' weights file (a state dict saved with torch.save) and its digest."""
    root = tmp_path_factory.mktemp("publisher")
    torch.manual_seed(0)
    model = cnnzoo.create_model(NAME)
    data_path = root / "tmp.pth"
    torch.save(model.state_dict(), data_path)
    sha = hashlib.sha256(data_path.read_bytes()).hexdigest()
    final = root / f"mnv1_025-{sha[:8]}.pth"  # torchvision's naming: the digest's start
    data_path.rename(final)
    return root, final, sha, model.state_dict()


@pytest.fixture
def env(tmp_path, monkeypatch):
    """The weights folder of a cache made for the test."""
    monkeypatch.setenv("CNNZOO_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    return tmp_path / "cache" / "weights"


def _entry(url: str, sha: str | None, **kw) -> WeightsEntry:
    return WeightsEntry(NAME, "test", "torchvision", url, sha, top1=12.5, top5=34.5, **kw)


def _inject(monkeypatch, entry: WeightsEntry) -> None:
    monkeypatch.setitem(TABLE, NAME, [entry])


def _cache_files(cache):
    return sorted(p.name for p in cache.iterdir()) if cache.exists() else []


def test_download_loads_the_weights_and_attaches_preprocess_and_names(published, env,
                                                                      monkeypatch, capsys):
    root, final, sha, state = published
    with WeightsServer(root) as srv:
        _inject(monkeypatch, _entry(srv.url + final.name, sha[:8]))
        model = cnnzoo.create_model(NAME, pretrained=True)
    assert "downloading" in capsys.readouterr().err  # progress goes to stderr
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items())
    cfg = model.pretrained_cfg
    assert cfg["classes"][281] == "tabby" and len(cfg["classes"]) == 1000
    assert cfg["preprocess"] == {"input_size": [3, 224, 224], "resize": 256, "grayscale": False,
                                 "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
    assert cfg["weights"]["top1_acc_pct"] == 12.5 and cfg["weights"]["source"] == "torchvision"
    assert _cache_files(env) == [final.name]
    # the server is gone: the cache answers, no network
    again = cnnzoo.create_model(NAME, pretrained="test")
    assert torch.equal(again.state_dict()["fc.weight"], state["fc.weight"])
    # another class count: ImageNet's backbone, a new classifier, no ImageNet names
    five = cnnzoo.create_model(NAME, num_classes=5, pretrained=True)
    assert five.num_classes == 5 and five.pretrained_cfg["classes"] is None
    assert torch.equal(five.state_dict()["conv_stem.conv.weight"], state["conv_stem.conv.weight"])
    gray = cnnzoo.create_model(NAME, in_chans=1, pretrained=True)  # first conv summed
    assert gray.pretrained_cfg["preprocess"]["input_size"][0] == 1


def test_model_file_records_classes_and_preprocess(published, env, monkeypatch, tmp_path):
    root, final, sha, _ = published
    _inject(monkeypatch, _entry((root / final.name).as_uri(), sha))  # a full digest
    model = cnnzoo.create_model(NAME, pretrained=True)
    cnnzoo.modelfile.save_model(tmp_path / "m.safetensors", model)
    _, record = cnnzoo.load_model(tmp_path / "m.safetensors")
    assert record["classes"][0] == "tench" and record["preprocess"]["resize"] == 256
    assert record["pretrained"]["tag"] == "test"


def test_checksum_mismatch_is_refused_and_nothing_kept(published, env, monkeypatch):
    root, final, sha, _ = published
    with WeightsServer(root) as srv:
        _inject(monkeypatch, _entry(srv.url + final.name, "0" * 8))
        with pytest.raises(WeightsDownloadError, match="does not match the published"):
            cnnzoo.create_model(NAME, pretrained=True)
    assert _cache_files(env) == []


def test_truncated_transfer_keeps_only_a_part_file_then_resumes(published, env, monkeypatch):
    root, final, sha, _ = published
    with WeightsServer(root) as srv:
        entry = _entry(srv.url + final.name, sha[:8])
        srv.mode = "truncate"
        with pytest.raises(WeightsDownloadError, match="stopped after"):
            fetch(entry, progress=False)
        assert _cache_files(env) == [final.name + ".part"]  # nothing a later run would trust
        half = (env / (final.name + ".part")).stat().st_size
        assert 0 < half < final.stat().st_size
        srv.mode = "ok"
        path = fetch(entry, progress=False)
        assert srv.requests[-1][1] == f"bytes={half}-"  # asked only for the rest
    assert path.read_bytes() == final.read_bytes() and _cache_files(env) == [final.name]


def test_server_ignoring_range_restarts_cleanly(published, env):
    root, final, sha, _ = published
    env.mkdir(parents=True)
    (env / (final.name + ".part")).write_bytes(b"garbage")
    with WeightsServer(root) as srv:
        srv.mode = "norange"
        path = fetch(_entry(srv.url + final.name, sha[:8]), progress=False)
    assert path.read_bytes() == final.read_bytes()


@pytest.mark.parametrize("code", ["404", "500"])
def test_http_errors_name_the_url_and_how_to_place_the_file(published, env, code):
    root, final, sha, _ = published
    with WeightsServer(root) as srv:
        srv.mode = code
        url = srv.url + final.name
        with pytest.raises(WeightsDownloadError) as err:
            fetch(_entry(url, sha[:8]), progress=False)
    text = str(err.value)
    assert f"HTTP {code}" in text and url in text and str(env / final.name) in text
    assert "weights=PATH" in text and "cnnzoo convert" in text and _cache_files(env) == []


def test_connection_refused_and_a_file_placed_by_hand(published, env, monkeypatch):
    root, final, sha, state = published
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    entry = _entry(f"http://127.0.0.1:{port}/{final.name}", sha[:8])
    _inject(monkeypatch, entry)
    with pytest.raises(WeightsDownloadError, match="could not download .*refused"):
        cnnzoo.create_model(NAME, pretrained=True)
    # the message's advice works: the file copied into the cache is verified and used
    env.mkdir(parents=True, exist_ok=True)
    (env / final.name).write_bytes(final.read_bytes())
    assert torch.equal(cnnzoo.create_model(NAME, pretrained=True).state_dict()["fc.bias"],
                       state["fc.bias"])
    # and weights=PATH stands in for the download, still with the names
    m = cnnzoo.create_model(NAME, pretrained=True, weights=final)
    assert m.pretrained_cfg["classes"][1] == "goldfish"


def test_tampered_cache_file_is_not_trusted(published, env, monkeypatch):
    root, final, sha, _ = published
    env.mkdir(parents=True)
    (env / final.name).write_bytes(final.read_bytes()[:-10] + b"0123456789")
    with WeightsServer(root) as srv:
        path = fetch(_entry(srv.url + final.name, sha[:8]), progress=False)  # fetched again
        assert len(srv.requests) == 1
    assert path.read_bytes() == final.read_bytes()


@pytest.mark.parametrize("scheme", ["file", "http"])
def test_mirror_serves_the_same_file_names(published, env, monkeypatch, scheme):
    root, final, sha, _ = published
    # the publisher's URL is unreachable; the mirror has the file
    entry = _entry("http://127.0.0.1:9/nowhere/" + final.name, sha[:8])
    with WeightsServer(root) as srv:
        monkeypatch.setenv(MIRROR_ENV, root.as_uri() if scheme == "file" else srv.url)
        assert fetch(entry, progress=False).read_bytes() == final.read_bytes()
    monkeypatch.setenv(MIRROR_ENV, "ftp://x")
    (env / final.name).unlink()
    with pytest.raises(WeightsDownloadError, match="http://, https:// or file://"):
        fetch(entry, progress=False)


def test_unknown_weights_and_list_models():
    with pytest.raises(cnnzoo.errors.UnknownModelError, match="no published weights"):
        cnnzoo.create_model("lenet5", pretrained=True)
    with pytest.raises(cnnzoo.errors.InvalidArgumentError, match="imagenet1k_v2"):
        cnnzoo.create_model("resnet50", pretrained="nope")
    names = cnnzoo.list_models(pretrained=True)
    assert "resnet50" in names and "inception_v4" in names and "lenet5" not in names
    # every table row is a registered model, its file named as torch.hub expects
    for name, entries in TABLE.items():
        cnnzoo.registry.get_entry(name)
        for e in entries:
            if e.source == "torchvision":
                assert e.sha256 in e.file_name and e.url.startswith("https://download.pytorch.org")


def test_cli_weights_and_predict_with_names(published, env, monkeypatch, tmp_path, cli):
    root, final, sha, _ = published
    code, out, _ = cli("weights", "--format", "json")
    rows = json.loads(out)
    assert code == 0 and {"model": "resnet50", "tag": "imagenet1k_v2"}.items() <= rows[
        [r["model"] for r in rows].index("resnet50")].items()
    assert next(r for r in rows if r["model"] == "resnet50")["top1_acc_pct"] == 80.858
    code, _, err = cli("weights", "lenet5")
    assert code == 2 and "no published weights" in err
    with WeightsServer(root) as srv:
        _inject(monkeypatch, _entry(srv.url + final.name, "f" * 8))
        code, _, err = cli("weights", NAME, "--download")
        assert code == 2 and "refused" in err and _cache_files(env) == []
        _inject(monkeypatch, _entry(srv.url + final.name, sha[:8]))
        code, out, _ = cli("weights", NAME, "--download", "--format", "json")
    assert code == 0 and json.loads(out)[0]["cached"] is True
    img = tmp_path / "x.png"
    Image.new("RGB", (300, 200), (120, 80, 40)).save(img)
    code, out, _ = cli("predict", NAME, str(img), "--pretrained", "--format", "json")
    top = json.loads(out)[0]["top"]
    names = cnnzoo.data.classnames.imagenet_classes()
    assert code == 0 and all(t["class"] == names[t["index"]] for t in top)


@pytest.fixture
def lenet_published(tmp_path, env, monkeypatch):
    """lenet5_modern 'published' with 10 classes (file:// URL): fast enough to train and eval."""
    torch.manual_seed(3)
    src = tmp_path / "lenet.pth"
    state = cnnzoo.create_model("lenet5_modern").state_dict()
    torch.save(state, src)
    sha = hashlib.sha256(src.read_bytes()).hexdigest()
    monkeypatch.setitem(TABLE, "lenet5_modern", [WeightsEntry(
        "lenet5_modern", "test", "timm", src.as_uri(), sha, num_classes=10, resize=32, crop=32)])
    return state


def test_eval_and_visualize_take_a_name_with_pretrained(lenet_published, tmp_path, cli):
    code, out, err = cli("eval", "lenet5_modern", "--pretrained", "--data", "embedded",
                         "--format", "json")
    assert code == 0, err
    res = json.loads(out)
    assert res["model"] == "lenet5_modern" and 0 <= res["top1_err_pct"] <= 100
    png = tmp_path / "filters.png"
    code, _, err = cli("visualize", "--pretrained", "filters", "lenet5_modern", "--out", str(png))
    assert code == 0 and png.is_file(), err


def test_train_starts_from_the_published_weights(lenet_published, tmp_path, cli):
    """`cnnzoo train MODEL --pretrained`: the run starts from the table's file (a tiny lr keeps it)."""
    state = lenet_published
    code, out, err = cli("train", "lenet5_modern", "--pretrained", "--epochs", "1", "--lr", "1e-9",
                         "--set", "weight_decay=0", "--set", "limit_train=64", "--out",
                         str(tmp_path / "run"), "--no-progress", "--format", "json")
    assert code == 0, err
    model, record = cnnzoo.load_model(tmp_path / "run" / "model.safetensors")
    convs = [k for k in state if k.endswith("weight") and state[k].dim() == 4]
    assert convs and all(torch.allclose(model.state_dict()[k], state[k], atol=1e-5) for k in convs)
    fresh = cnnzoo.create_model("lenet5_modern").state_dict()  # another init is far away
    assert not torch.allclose(fresh[convs[0]], state[convs[0]], atol=1e-2)
    assert record["pretrained"]["tag"] == "test" and len(record["classes"]) == 10
    # the data is normalised as the weights were trained (ImageNet's statistics, grey = mean of
    # R, G, B), not with MNIST's own, and a resumed run keeps doing so
    gray = [sum(IMAGENET_MEAN) / 3, sum(IMAGENET_STD) / 3]
    assert record["preprocess"]["mean"] + record["preprocess"]["std"] == pytest.approx(gray)
    code, _, err = cli("train", "--resume", str(tmp_path / "run"), "--epochs", "2", "--no-progress",
                       "--format", "json")
    assert code == 0, err
    _, again = cnnzoo.load_model(tmp_path / "run" / "model.safetensors")
    assert again["preprocess"]["mean"] + again["preprocess"]["std"] == pytest.approx(gray)


def test_a_second_download_of_the_same_file_waits_its_turn(published, env):
    fcntl = pytest.importorskip("fcntl")
    root, final, sha, _ = published
    env.mkdir(parents=True)
    with open(env / (final.name + ".part"), "ab") as held:  # another process's download
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        with pytest.raises(WeightsDownloadError, match="another process is downloading"):
            fetch(_entry((root / final.name).as_uri(), sha[:8]), progress=False)
    assert fetch(_entry((root / final.name).as_uri(), sha[:8]), progress=False).is_file()


def test_weights_fetched_by_hand_work_offline(published, env, monkeypatch, tmp_path, cli):
    """`--weights PATH`: the published file downloaded elsewhere is verified, cached and used
    with no server at all; another file under that name is refused and nothing is cached."""
    root, final, sha, state = published
    _inject(monkeypatch, _entry("http://127.0.0.1:9/" + final.name, sha[:8]))  # nothing listens
    img = tmp_path / "x.png"
    Image.new("RGB", (300, 200), (120, 80, 40)).save(img)
    code, _, err = cli("predict", NAME, str(img), "--pretrained", "--format", "json")
    assert code == 2 and "--weights PATH" in err and final.name in err
    fake = tmp_path / final.name
    fake.write_bytes(final.read_bytes()[:-10])
    code, _, err = cli("predict", NAME, str(img), "--weights", str(fake))
    assert code == 2 and "is not" in err and "SHA-256" in err and _cache_files(env) == []
    code, out, err = cli("predict", NAME, str(img), "--weights", str(final), "--format", "json")
    assert code == 0, err
    assert _cache_files(env) == [final.name] and len(json.loads(out)[0]["top"]) == 5
    code, _, err = cli("predict", str(final), str(img), "--weights", str(final))
    assert code == 2 and "model NAME" in err


def test_a_cache_that_cannot_be_made_and_every_row_of_a_source(published, monkeypatch, tmp_path, cli):
    root, final, sha, _ = published
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("CNNZOO_CACHE", str(blocker / "cache"))
    _inject(monkeypatch, _entry((root / final.name).as_uri(), sha[:8]))
    img = tmp_path / "x.png"
    Image.new("RGB", (64, 64)).save(img)
    for argv in (["predict", NAME, str(img), "--pretrained"], ["predict", NAME, str(img), "--weights", str(final)]):
        code, _, err = cli(*argv)
        assert code == 2 and "cache" in err and "Traceback" not in err, argv
    code, out, _ = cli("weights", "resnet50", "--tag", "tv", "--format", "json")
    assert code == 0 and {r["tag"] for r in json.loads(out)} == {"imagenet1k_v1", "imagenet1k_v2"}
