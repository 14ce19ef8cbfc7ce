"""Tests of artstyle.nst (Gatys neural style transfer) and the VGG preprocessing it uses.

Random-weight extractors and tiny images only: no download, a few seconds each.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from pydantic import ValidationError

from artstyle.config import INITS, LossWeights, TransferParams
from artstyle.models.vgg19 import vgg_preprocess
from artstyle.nst import (
    FeatureExtractor,
    StyleTransferDiverged,
    StyleTransferLoss,
    content_loss,
    default_own_cnn_layers,
    gram_matrix,
    plot_losses,
    save_panel,
    ssim_to_content,
    style_loss,
    stylize,
    total_variation_loss,
)
from artstyle.nst import losses as nst_losses
from artstyle.nst.fast_gradient import fast_gram_matrix
from artstyle.nst.fourier import fourier_image, fourier_scale
from artstyle.nst.inputs import (
    keep_colours,
    mask_at,
    match_colour,
    prepare_images,
    rgb_to_yiq,
    style_mask,
)
from artstyle.nst.optimise import (
    OutputTooLarge,
    _split_budget,
    auto_scales,
    check_memory,
    estimate_memory_mb,
)


def _tiny_cnn(fixed: tuple[int, int] | None = None, seed: int = 0) -> keras.Model:
    """An own-CNN-like model: [0, 255] RGB in, rescaling inside, 2 max-pools (min side 4)."""
    he = keras.initializers.HeNormal
    inputs = keras.Input((*(fixed or (None, None)), 3), name="image")
    x = keras.layers.Rescaling(1.0 / 255, name="rescale")(inputs)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="c1",
                            kernel_initializer=he(seed))(x)
    x = keras.layers.MaxPooling2D(2, name="p1")(x)
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="c2",
                            kernel_initializer=he(seed + 1))(x)
    x = keras.layers.MaxPooling2D(2, name="p2")(x)
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="c3",
                            kernel_initializer=he(seed + 2))(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = keras.layers.Dense(3, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name="tiny_cnn")


@pytest.fixture(scope="module")
def tiny_extractor() -> FeatureExtractor:
    return FeatureExtractor.from_model(_tiny_cnn(), content_layers=["c2"], style_layers=["c1", "c2", "c3"])


@pytest.fixture(scope="module")
def vgg_random() -> FeatureExtractor:
    return FeatureExtractor.vgg19(None, seed=0)


def _smooth_image(h: int, w: int, seed: int) -> np.ndarray:
    """A structured (not pure noise) uint8 RGB test image."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    chans = [np.sin(2 * np.pi * (f1 * yy + f2 * xx) + ph)
             for f1, f2, ph in rng.uniform(0.5, 3.0, (3, 3))]
    img = 127.5 + 100 * np.stack(chans, -1) + rng.normal(0, 10, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def _stripes(h: int, w: int) -> np.ndarray:
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 0] = np.where((np.arange(w) // 3) % 2 == 0, 230, 20)[None, :]
    img[..., 2] = np.where((np.arange(h) // 5) % 2 == 0, 200, 40)[:, None]
    img[..., 1] = 90
    return img


# ----------------------------------------------------------------------- preprocessing


def test_vgg_preprocess_equals_keras_preprocess_input():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (2, 5, 7, 3), dtype=np.uint8)
    expected = keras.applications.vgg19.preprocess_input(img.astype(np.float32).copy())
    np.testing.assert_allclose(vgg_preprocess(img), expected, rtol=0, atol=1e-4)
    as_float = rng.uniform(0, 255, (4, 6, 3)).astype(np.float32)
    expected = keras.applications.vgg19.preprocess_input(as_float.copy())
    np.testing.assert_allclose(vgg_preprocess(as_float), expected, rtol=0, atol=1e-4)
    # the tensor path (used inside tf.function) gives the same numbers
    np.testing.assert_allclose(vgg_preprocess(tf.constant(as_float)).numpy(), expected, atol=1e-4)
    # first output channel is blue minus its ImageNet mean
    assert vgg_preprocess(np.array([[[10, 20, 30]]], np.uint8))[0, 0, 0] == pytest.approx(30 - 103.939)


# ----------------------------------------------------------------------- losses


GRAMS = pytest.mark.parametrize("gram", [gram_matrix, fast_gram_matrix], ids=["plain", "fast"])


@GRAMS
def test_gram_matrix_hand_computed(gram):
    f = np.zeros((2, 2, 2), np.float32)
    f[..., 0] = [[1, 2], [3, 4]]
    f[..., 1] = [[0, 1], [1, 0]]
    # G[c, d] = sum_ij F[i, j, c] F[i, j, d] / (H * W), H * W = 4
    expected = np.array([[30 / 4, 5 / 4], [5 / 4, 2 / 4]])
    np.testing.assert_allclose(gram(f).numpy(), expected, rtol=1e-6)
    batched = gram(np.stack([f, 2 * f]))
    assert batched.shape == (2, 2, 2)
    np.testing.assert_allclose(batched.numpy()[1], 4 * expected, rtol=1e-6)
    with pytest.raises(ValueError, match="rank 3 or 4"):
        gram(np.zeros((4, 4), np.float32))


@GRAMS
def test_gram_matrix_gradient_hand_computed(gram):
    # L = sum(M * G) with a non-symmetric M: dL/dF[i, j, c] = sum_d F[i, j, d] (M[c, d] + M[d, c]) / (H * W)
    f = np.arange(2 * 3 * 2, dtype=np.float32).reshape(1, 2, 3, 2) - 5.0
    m = np.array([[1.0, 2.0], [-3.0, 0.5]], np.float32)
    x = tf.constant(f)
    with tf.GradientTape() as tape:
        tape.watch(x)
        total = tf.reduce_sum(m * gram(x)[0])
    expected = f @ (m + m.T).T / 6.0
    np.testing.assert_allclose(tape.gradient(total, x).numpy(), expected, rtol=1e-6, atol=1e-6)


def test_content_loss_hand_value():
    f = np.array([1, 2, 3, 4], np.float32).reshape(1, 2, 2, 1)
    t = np.array([0, 3, 1, 4], np.float32).reshape(1, 2, 2, 1)
    # differences 1, -1, 2, 0 -> mean of squares (1 + 1 + 4 + 0) / 4
    assert float(content_loss(f, t)) == pytest.approx(1.5)


def test_style_loss_hand_value_and_self_is_zero(tiny_extractor):
    f = np.zeros((2, 2, 2), np.float32)
    f[..., 0] = [[1, 2], [3, 4]]
    f[..., 1] = [[0, 1], [1, 0]]
    zero_gram = np.zeros((2, 2), np.float32)
    # mean of squared Gram entries: (7.5^2 + 2 * 1.25^2 + 0.5^2) / 4
    assert float(style_loss(gram_matrix(f), zero_gram)) == pytest.approx((56.25 + 3.125 + 0.25) / 4)
    assert float(style_loss(zero_gram, gram_matrix(f))) == pytest.approx((56.25 + 3.125 + 0.25) / 4)
    assert float(style_loss(gram_matrix(f), gram_matrix(f))) == 0.0

    img = _smooth_image(24, 20, seed=3)
    loss = StyleTransferLoss(tiny_extractor, img, img)
    terms = loss(tf.constant(img[None] / 255.0, tf.float32))
    assert float(terms["style"]) == pytest.approx(0.0, abs=1e-6 * float(terms["tv"]) + 1e-6)
    assert float(terms["content"]) == pytest.approx(0.0, abs=1e-3)
    assert float(terms["total"]) == pytest.approx(
        float(terms["content"]) + float(terms["style"]) + float(terms["tv"]), rel=1e-5)


def test_total_variation_hand_value():
    img = np.array([[0, 1, 3], [2, 2, 2]], np.float32).reshape(1, 2, 3, 1)
    # horizontal |1-0| + |3-1| + 0 + 0 = 3; vertical |2-0| + |2-1| + |2-3| = 4
    assert float(total_variation_loss(img)) == pytest.approx(7.0)
    assert float(total_variation_loss(img[0])) == pytest.approx(7.0)


# ----------------------------------------------------------------------- extractor


def _colour_stats(img01: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    px = img01.reshape(-1, 3).astype(np.float64)
    return px.mean(0), np.cov(px, rowvar=False, bias=True)


def test_match_colour_gives_the_reference_mean_and_covariance():
    rng = np.random.default_rng(0)
    # Mid-range, low-contrast images: the transform never needs to clip here.
    image = np.clip(_smooth_image(30, 40, seed=1) * 0.4 + 70, 0, 255).astype(np.uint8)
    mix = np.array([[0.3, 0.1, 0.0], [0.2, 0.25, 0.05], [0.0, 0.1, 0.35]])
    reference = np.clip(rng.normal(0, 40, (25, 17, 3)) @ mix.T + (150, 110, 90), 0, 255).astype(np.uint8)
    out = match_colour(image, reference, eps=1e-12)
    assert out.shape == (30, 40, 3) and out.dtype == np.float32
    assert 0.0 < out.min() and out.max() < 1.0  # nothing clipped, so the statistics are exact
    mu_out, cov_out = _colour_stats(out)
    mu_ref, cov_ref = _colour_stats(reference / 255.0)
    np.testing.assert_allclose(mu_out, mu_ref, atol=1e-6)
    np.testing.assert_allclose(cov_out, cov_ref, atol=1e-6)
    # The structure is the image's: an affine map of each pixel's own colour.
    grey_in, grey_out = image.mean(-1).ravel(), out.mean(-1).ravel()
    assert abs(np.corrcoef(grey_in, grey_out)[0, 1]) > 0.9


def test_match_colour_of_an_image_with_itself_is_the_identity_and_flat_images_stay_finite():
    image = _smooth_image(20, 24, seed=2)
    np.testing.assert_allclose(match_colour(image, image, eps=1e-12), image / 255.0, atol=1e-6)
    flat = np.full((8, 9, 3), 77, np.uint8)
    out = match_colour(flat, image)
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out[0, 0], image.reshape(-1, 3).mean(0) / 255.0, atol=1e-6)
    grey = np.repeat(_smooth_image(10, 10, seed=3)[..., :1], 3, axis=-1)  # singular covariance
    assert np.all(np.isfinite(match_colour(grey, image)))


@pytest.mark.parametrize("init, fourier_exponent",
                         [("colour_matched", 0.25), ("content", 0.25), ("colour_matched", 0.0),
                          ("noise", 0.25)])
def test_stylize_starts_from_the_chosen_image(tiny_extractor, init, fourier_exponent):
    # Mid-range, low-contrast images of the same size (the style is used as it is, and the
    # colour transfer never clips): the content's structure, the style's colours.
    content = np.clip(_smooth_image(24, 32, seed=4) * 0.4 + 70, 0, 255).astype(np.uint8)
    style = np.clip(_smooth_image(24, 32, seed=5) * 0.3 + (140, 100, 60), 0, 255).astype(np.uint8)
    # Stopped after the first evaluation, the result is the start image itself.
    settings = TransferParams(max_evaluations=3, init=init, fourier_exponent=fourier_exponent)
    result = stylize(content, style, extractor=tiny_extractor, settings=settings,
                     callback=lambda record: True)
    assert result.extra["init"] == init and result.extra["fourier_exponent"] == fourier_exponent
    assert result.evaluations == 1 and result.extra["stop_reason"] == "callback"
    out = result.image.astype(np.float64)
    assert out.shape == content.shape
    if init == "content":
        assert np.abs(out - content).max() <= 1
    elif init == "noise":  # uniform noise from the seed: mean grey 127.5, no structure
        assert abs(out.mean() - 127.5) < 10
        assert abs(np.corrcoef(content.mean(-1).ravel(), out.mean(-1).ravel())[0, 1]) < 0.3
    else:  # the content's structure in the style's mean colour and colour covariance
        mu_out, cov_out = _colour_stats(out)
        mu_style, cov_style = _colour_stats(style)
        assert np.abs(mu_out - mu_style).max() < 1.0          # grey levels
        assert np.abs(mu_out - _colour_stats(content)[0]).max() > 30
        np.testing.assert_allclose(cov_out, cov_style, rtol=0.05, atol=2.0)
        assert np.corrcoef(content.mean(-1).ravel(), out.mean(-1).ravel())[0, 1] > 0.9
    assert TransferParams().init == "colour_matched"


def test_fourier_scale_gains():
    gain = fourier_scale(6, 8, 0.5)
    assert gain.shape == (6, 5) and gain.dtype == np.float32
    f_max = np.hypot(0.5, 0.5)  # the corner (Nyquist, Nyquist) frequency, in cycles per pixel
    assert gain[3, 4] == pytest.approx(1.0) and gain.min() == pytest.approx(1.0)
    # DC and the lowest frequency (1/8 cycle per pixel along x) share the floor's gain
    assert gain[0, 0] == pytest.approx((f_max / (1 / 8)) ** 0.5) and gain[0, 1] == pytest.approx(gain[0, 0])
    assert gain[1, 0] == pytest.approx((f_max / (1 / 6)) ** 0.5)
    np.testing.assert_array_equal(fourier_scale(5, 7, 0.0), np.ones((5, 4), np.float32))
    with pytest.raises(ValueError, match="exponent"):
        fourier_scale(4, 4, -1.0)
    with pytest.raises(ValueError, match="size"):
        fourier_scale(0, 4, 0.25)


@pytest.mark.parametrize("h, w", [(7, 10), (9, 5)])
def test_fourier_image_is_start_plus_the_change_its_coefficients_encode(h, w):
    rng = np.random.default_rng(3)
    start = rng.uniform(0.3, 0.7, (1, h, w, 3)).astype(np.float32)
    change = rng.uniform(-0.2, 0.2, (h, w, 3))
    gain = fourier_scale(h, w, 0.25)
    spectrum = np.fft.rfft2(change.transpose(2, 0, 1)) / np.sqrt(h * w) / gain
    coeffs = np.stack([spectrum.real, spectrum.imag], -1).astype(np.float32)
    image = fourier_image(tf.constant(coeffs), tf.constant(start), tf.constant(gain)).numpy()
    np.testing.assert_allclose(image, start + change[None], atol=1e-5)
    zero = fourier_image(tf.zeros_like(coeffs), tf.constant(start), tf.constant(gain)).numpy()
    np.testing.assert_allclose(zero, start, atol=1e-6)
    clipped = fourier_image(tf.constant(coeffs * 20), tf.constant(start), tf.constant(gain)).numpy()
    assert clipped.min() == 0.0 and clipped.max() == 1.0


@pytest.mark.parametrize("exponent", [0.0, 0.25])
def test_lbfgs_in_pixels_and_in_fourier_space_descends(tiny_extractor, exponent):
    content, style = _smooth_image(24, 32, seed=4), _stripes(30, 30)
    result = stylize(content, style, extractor=tiny_extractor,
                     settings=TransferParams(max_evaluations=12, fourier_exponent=exponent))
    assert result.final_loss < 0.85 * result.history[0]["total"]  # the start image's loss
    best = result.best_record  # the saved image's loss terms, not the last line-search trial's
    assert best["total"] == result.final_loss == min(r["total"] for r in result.history)
    assert best["content"] + best["style"] + best["tv"] == pytest.approx(best["total"], rel=1e-5)
    assert TransferParams().fourier_exponent == 0.25


def test_vgg19_extractor_layers_and_min_side(vgg_random):
    assert vgg_random.content_layers == ("block5_conv2",)
    assert vgg_random.style_layers[0] == "block1_conv1" and vgg_random.style_layers[-1] == "block5_conv1"
    assert vgg_random.min_side == 16  # four 2x2 max-pools before block5
    content, style = vgg_random(np.zeros((1, 32, 48, 3), np.float32))
    assert content[0].shape == (1, 2, 3, 512)
    assert [f.shape[-1] for f in style] == [64, 128, 256, 512, 512]



def _image_gradient(extractor: FeatureExtractor, image: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Features of ``image`` (H, W, 3) in [0, 255] and the gradient of sum(features**2) w.r.t. it."""
    x = tf.constant(image[None].astype(np.float32))
    with tf.GradientTape() as tape:
        tape.watch(x)
        content, style = extractor(x)
        total = tf.add_n([tf.reduce_sum(tf.square(f)) for f in content + style])
    return [f.numpy() for f in content + style], tape.gradient(total, x).numpy()[0]


def _assert_same_features_and_gradient(fast: FeatureExtractor, stock: FeatureExtractor,
                                       image: np.ndarray) -> None:
    assert fast.chain is not None and stock.chain is None
    f_fast, g_fast = _image_gradient(fast, image)
    f_stock, g_stock = _image_gradient(stock, image)
    for a, b in zip(f_fast, f_stock, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5 * np.abs(b).max())
    assert np.abs(g_stock).max() > 0
    assert np.linalg.norm(g_fast - g_stock) / np.linalg.norm(g_stock) < 1e-5


def test_vgg19_runs_as_a_plain_conv_chain_with_the_same_values_and_image_gradient(vgg_random):
    stock = FeatureExtractor.vgg19(None, seed=0, fast_gradient=False)
    _assert_same_features_and_gradient(vgg_random, stock, _smooth_image(23, 37, seed=3).astype(np.float32))
    # and through the whole style-transfer loss
    content, style = _smooth_image(19, 26, seed=1), _stripes(30, 30)
    x = tf.constant(match_colour(content, style)[None].astype(np.float32))
    grads = []
    for ex in (vgg_random, stock):
        loss = StyleTransferLoss(ex, content, style,
                                 weights=LossWeights(content_weight=1e4, style_weight=1e-2, tv_weight=30))
        # the hand-written Gram gradient goes with the hand-written image gradient
        assert loss.gram is (fast_gram_matrix if ex.fast_gradient else gram_matrix)
        with tf.GradientTape() as tape:
            tape.watch(x)
            total = loss(x)["total"]
        grads.append((float(total), tape.gradient(total, x).numpy()))
    (l_fast, g_fast), (l_stock, g_stock) = grads
    assert l_fast == pytest.approx(l_stock, rel=1e-6)
    assert np.linalg.norm(g_fast - g_stock) / np.linalg.norm(g_stock) < 1e-5


def test_bfloat16_chain_gives_float32_features_and_loss_close_to_float32(vgg_random):
    """compute_dtype="bfloat16": the chain computes in bfloat16 and hands float32 features
    to the loss; features, loss and image gradient stay close to float32's (bfloat16 keeps
    8 bits of mantissa: relative rounding 2**-8)."""
    from artstyle.nst import fast_gradient

    image = _smooth_image(23, 37, seed=3).astype(np.float32)
    x = tf.constant(image[None])
    f32 = vgg_random(x)
    f16 = vgg_random(x, compute_dtype="bfloat16")
    assert vgg_random.effective_compute_dtype("bfloat16") == "bfloat16"
    assert vgg_random.effective_compute_dtype("auto") == fast_gradient.resolve_compute_dtype("auto")
    with pytest.raises(ValueError, match="compute_dtype"):
        vgg_random.effective_compute_dtype("float16")
    assert vgg_random._chains["bfloat16"].compute_dtype == "bfloat16"
    for a, b in zip(f16[0] + f16[1], f32[0] + f32[1], strict=True):
        assert a.dtype == tf.float32
        assert np.linalg.norm(a.numpy() - b.numpy()) / np.linalg.norm(b.numpy()) < 0.05
    content, style = _smooth_image(19, 26, seed=1), _stripes(30, 30)
    start = tf.constant(match_colour(content, style)[None].astype(np.float32))
    weights = LossWeights(content_weight=1e4, style_weight=1e-2, tv_weight=30)
    values = {}
    for dtype in ("float32", "bfloat16"):
        loss = StyleTransferLoss(vgg_random, content, style, weights=weights, compute_dtype=dtype)
        assert loss.compute_dtype == dtype
        with tf.GradientTape() as tape:
            tape.watch(start)
            total = loss(start)["total"]
        values[dtype] = (float(total), tape.gradient(total, start).numpy().ravel())
    (l32, g32), (l16, g16) = values["float32"], values["bfloat16"]
    assert l16 == pytest.approx(l32, rel=0.05) and l16 != l32
    assert g16.dtype == np.float32
    # about the same direction (0.988 here: random weights, a 19 x 26 px image)
    assert float(g16 @ g32) / (np.linalg.norm(g16) * np.linalg.norm(g32)) > 0.97


def test_compute_dtype_auto_follows_the_cpu_and_other_backbones_stay_float32(tiny_extractor, tmp_path):
    from artstyle.nst import fast_gradient

    amx, avx512, plain = tmp_path / "amx", tmp_path / "avx512", tmp_path / "plain"
    amx.write_text("processor\t: 0\nflags\t\t: fpu sse avx512f amx_bf16 amx_tile\n")
    avx512.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_bf16\n")
    plain.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_vnni\n")
    no_gpu = not tf.config.list_physical_devices("GPU")
    assert fast_gradient.bfloat16_is_fast(str(amx)) is no_gpu
    assert fast_gradient.bfloat16_is_fast(str(avx512)) is no_gpu    # AMD Zen 4, Cooper Lake
    assert fast_gradient.bfloat16_is_fast(str(plain)) is False
    assert fast_gradient.bfloat16_is_fast(str(tmp_path / "missing")) is False
    assert fast_gradient.resolve_compute_dtype("float32") == "float32"
    assert fast_gradient.resolve_compute_dtype("bfloat16") == "bfloat16"
    assert fast_gradient.resolve_compute_dtype("auto") in ("float32", "bfloat16")
    with pytest.raises(ValueError, match="compute_dtype"):
        fast_gradient.resolve_compute_dtype("float16")
    # no plain conv chain (batch-normalised own CNN or fast_gradient=False): float32
    assert tiny_extractor.chain is None
    assert tiny_extractor.effective_compute_dtype("bfloat16") == "float32"
    result = stylize(_smooth_image(24, 24, 0), _stripes(24, 24), extractor=tiny_extractor,
                     settings=TransferParams(max_side=24, max_evaluations=2, compute_dtype="bfloat16"))
    assert result.summary()["compute_dtype"] == "float32"


def test_plain_conv_chain_odd_kernels_linear_no_bias_and_strided_pools():
    he = keras.initializers.HeNormal
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(5, (5, 3), padding="same", use_bias=False, name="a", kernel_initializer=he(0))(inputs)
    x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="p")(x)
    x = keras.layers.Conv2D(6, 1, padding="same", activation="relu", name="b", kernel_initializer=he(1))(x)
    model = keras.Model(inputs, x)
    fast = FeatureExtractor.from_model(model, content_layers=["b"], style_layers=["a", "b"])
    stock = FeatureExtractor.from_model(model, content_layers=["b"], style_layers=["a", "b"],
                                           fast_gradient=False)
    _assert_same_features_and_gradient(fast, stock, _smooth_image(17, 22, seed=5).astype(np.float32) - 127.5)


@pytest.mark.parametrize("layer", [
    keras.layers.Conv2D(4, 3, padding="valid", name="x"),
    keras.layers.Conv2D(4, 2, padding="same", name="x"),
    keras.layers.Conv2D(4, 3, strides=2, padding="same", name="x"),
    keras.layers.Conv2D(4, 3, padding="same", activation="tanh", name="x"),
    keras.layers.BatchNormalization(name="x"),
])
def test_other_layers_keep_the_keras_gradient(layer):
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="a")(inputs)
    model = keras.Model(inputs, layer(x))
    ex = FeatureExtractor.from_model(model, content_layers=["x"], style_layers=["a", "x"])
    assert ex.chain is None
    content, _ = ex(np.zeros((1, 12, 12, 3), np.float32))
    assert content[0].shape[0] == 1
    assert FeatureExtractor.from_model(_tiny_cnn(), content_layers=["c2"], style_layers=["c1"]).chain is None


def test_unknown_layer_is_a_clear_error():
    with pytest.raises(ValueError, match="nope"):
        FeatureExtractor.from_model(_tiny_cnn(), content_layers=["nope"], style_layers=["c1"])


def test_own_cnn_default_layers_earlier_content_deeper_style():
    content, style = default_own_cnn_layers(_tiny_cnn())
    assert content == ("c1",)
    assert style == ("c2", "c3")


def test_own_cnn_layers_have_one_owner_the_studys_rule():
    # params.yaml and the schema say "[] = the rule"; on the zoo's 3-block CNNs the rule
    # gives the study's layers: block1 for content, blocks 2 and 3 for style.
    from artstyle.config import OWN_CNN_BACKBONE, load_params
    from artstyle.models.zoo import build_cnn

    params = load_params()
    assert OWN_CNN_BACKBONE.content_layers == OWN_CNN_BACKBONE.style_layers == []
    assert params.stylize.own.content_layers == params.stylize.own.style_layers == []
    cnn = build_cnn(params.model(params.stylize.own_model), 5)
    assert default_own_cnn_layers(cnn) == (("block1_conv1",), ("block2_conv1", "block3_conv1"))


def test_fixed_size_own_cnn_is_rebuilt_flexible():
    ex = FeatureExtractor.from_model(_tiny_cnn(fixed=(64, 64)), content_layers=["c2"],
                                        style_layers=["c1", "c3"])
    assert ex.input_size is None and ex.min_side == 4
    content, style = ex(np.zeros((1, 20, 36, 3), np.float32))
    assert content[0].shape[1:3] == (10, 18) and style[1].shape[1:3] == (5, 9)


def test_fixed_size_cnn_that_cannot_be_rebuilt_resizes_inside(caplog):
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Rescaling(1.0 / 255)(inputs)
    x = keras.layers.Reshape((16, 16 * 3))(x)  # shape-bound: no flexible rebuild
    x = keras.layers.Reshape((16, 16, 3))(x)
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="a",
                            kernel_initializer=keras.initializers.HeNormal(0))(x)
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="b",
                            kernel_initializer=keras.initializers.HeNormal(1))(x)
    model = keras.Model(inputs, x)
    with caplog.at_level(logging.WARNING, logger="artstyle.nst.extractor"):
        ex = FeatureExtractor.from_model(model, content_layers=["a"], style_layers=["b"])
    assert ex.input_size == (16, 16)
    assert any(r.name == "artstyle.nst.extractor" and "resized" in r.getMessage() for r in caplog.records)
    result = stylize(_smooth_image(30, 22, 0), _stripes(20, 20), extractor=ex,
                     settings=TransferParams(max_evaluations=3))
    assert result.image.shape == (30, 22, 3)


# ----------------------------------------------------------------------- sizes


def test_sizes_odd_and_opposite_aspect_ratios(tiny_extractor):
    content = _smooth_image(301, 199, seed=4)
    style = _stripes(120, 480)
    c, s = prepare_images(content, style, max_side=512, min_side=4)
    assert c.shape == (301, 199, 3)
    assert s.shape[0] * 4 == pytest.approx(s.shape[1], abs=4)  # 1:4 kept, not stretched
    assert s.shape[0] * s.shape[1] == pytest.approx(301 * 199, rel=0.02)  # area matched
    c_small, _ = prepare_images(content, style, max_side=100, min_side=4)
    assert c_small.shape == (100, 66, 3)

    result = stylize(content, style, extractor=tiny_extractor,
                     settings=TransferParams(max_evaluations=1, max_side=512))
    assert result.image.shape == (301, 199, 3) and result.image.dtype == np.uint8
    assert result.style_shape == s.shape[:2]


def test_too_small_input_is_upscaled_to_the_minimum(vgg_random, caplog):
    content = _smooth_image(16, 12, seed=5)
    with caplog.at_level(logging.WARNING, logger="artstyle.nst.inputs"):
        result = stylize(content, _stripes(40, 40), extractor=vgg_random,
                         settings=TransferParams(max_evaluations=2))
    assert result.image.shape == (21, 16, 3)  # shorter side 12 -> 16, aspect 4:3 kept
    assert any(r.name == "artstyle.nst.inputs" and r.levelno == logging.WARNING
               and "minimum side of 16 px" in r.getMessage() for r in caplog.records)
    assert np.isfinite(result.final_loss)


# ----------------------------------------------------------------------- optimisation


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_optimisers_reduce_the_loss(tiny_extractor, optimizer):
    content = _smooth_image(28, 36, seed=6)
    style = _stripes(32, 32)
    result = stylize(content, style, extractor=tiny_extractor,
                     settings=TransferParams(optimizer=optimizer, max_evaluations=12, learning_rate=0.05,
                                             init="content"))
    totals = [r["total"] for r in result.history]
    assert result.evaluations == len(result.history) >= 12
    assert result.optimizer == optimizer
    assert result.final_loss < 0.8 * totals[0]
    assert result.history[-1]["seconds"] <= result.seconds
    for key in ("step", "seconds", "total", "content", "style", "tv"):
        assert key in result.history[0]


def test_coarse_to_fine_scales(tiny_extractor):
    content = _smooth_image(40, 32, seed=7)
    result = stylize(content, _stripes(30, 30), extractor=tiny_extractor,
                     settings=TransferParams(max_evaluations=7, scales=[0.5, 1.0], init="noise"), seed=3)
    sizes = [(r["level"], r["height"], r["width"]) for r in result.history]
    assert sizes[0] == (0, 20, 16) and sizes[-1] == (1, 40, 32)
    assert result.evaluations == 7 and result.image.shape == (40, 32, 3)
    # max_evaluations is a total over the scales: shares proportional to 1/scale (most
    # evaluations at the cheap coarse sizes), rounding leftovers to the coarsest
    assert [r["scale"] for r in result.history] == [0.5] * 5 + [1.0] * 2
    assert result.extra["budgets"] == [5, 2]
    # a callback stopping in the coarse stage still yields an output of the full size
    early = stylize(content, _stripes(30, 30), extractor=tiny_extractor,
                    settings=TransferParams(max_evaluations=7, scales=[0.5, 1.0]),
                    callback=lambda record: record["step"] >= 2)
    assert early.evaluations == 2 and early.image.shape == (40, 32, 3)
    assert early.extra["stop_reason"] == "callback"


@pytest.mark.parametrize("fourier_exponent", [0.0, TransferParams().fourier_exponent])
def test_higher_tv_weight_gives_smoother_output(tiny_extractor, fourier_exponent):
    # Start from noise so there is high-frequency variance for the TV term to remove.
    content = _smooth_image(32, 32, seed=8)
    style = _stripes(32, 32)

    def high_frequency_variance(img: np.ndarray) -> float:
        g = img.astype(np.float64).mean(-1)
        lap = -4 * g[1:-1, 1:-1] + g[:-2, 1:-1] + g[2:, 1:-1] + g[1:-1, :-2] + g[1:-1, 2:]
        return float(lap.var())

    settings = TransferParams(init="noise", max_evaluations=20, fourier_exponent=fourier_exponent)
    variances = [high_frequency_variance(stylize(
        content, style, extractor=tiny_extractor, settings=settings, weights=LossWeights(tv_weight=w),
        seed=1).image) for w in (0.0, 1.0, 10.0, 100.0)]
    # measured: 2.07e4, 1.0e3, 48, 16 (Fourier 0.25); 2.07e4, 314, 30, 22 (pixels)
    assert variances[0] > variances[1] > variances[2] > variances[3]


class _Poison:
    """Adds a tf.Variable to the TV term; the test's callback flips it to NaN mid-run."""

    def __init__(self, monkeypatch, at_step: int | None):
        self.var = tf.Variable(0.0)
        self.at_step = at_step
        original = nst_losses.total_variation_loss
        monkeypatch.setattr(nst_losses, "total_variation_loss", lambda img: original(img) + self.var)
        if at_step is None:
            self.var.assign(float("nan"))

    def callback(self, record):
        if self.at_step is not None and record["step"] >= self.at_step:
            self.var.assign(float("nan"))


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_nan_loss_recovers_last_good_image(tiny_extractor, monkeypatch, caplog, optimizer):
    poison = _Poison(monkeypatch, at_step=4)
    content = _smooth_image(24, 24, seed=9)
    with caplog.at_level(logging.WARNING, logger="artstyle.nst.optimise"):
        result = stylize(content, _stripes(24, 24), extractor=tiny_extractor,
                         settings=TransferParams(optimizer=optimizer, max_evaluations=20),
                         callback=poison.callback)
    assert result.diverged
    assert result.evaluations == 5  # 4 good evaluations, the 5th is NaN -> stop
    assert np.isnan(result.history[-1]["total"])
    assert result.image.dtype == np.uint8 and result.image.std() > 1.0
    assert np.isfinite(result.final_loss)
    assert any(r.name == "artstyle.nst.optimise" and "non-finite" in r.getMessage() for r in caplog.records)
    assert any(r.name == "artstyle.nst.optimise" and "diverged" in r.getMessage() for r in caplog.records)


def test_nan_loss_raises_when_asked(tiny_extractor, monkeypatch):
    poison = _Poison(monkeypatch, at_step=2)
    with pytest.raises(StyleTransferDiverged, match="non-finite"):
        stylize(_smooth_image(24, 24, 10), _stripes(24, 24), extractor=tiny_extractor,
                settings=TransferParams(max_evaluations=10), callback=poison.callback,
                on_divergence="raise")


def test_nan_from_the_start_never_returns_an_image(tiny_extractor, monkeypatch):
    _Poison(monkeypatch, at_step=None)
    with pytest.raises(StyleTransferDiverged, match="no usable image"):
        stylize(_smooth_image(24, 24, 11), _stripes(24, 24), extractor=tiny_extractor,
                settings=TransferParams(max_evaluations=5))


@pytest.mark.parametrize("key, value", [
    ("optimizer", "sgd"),
    ("init", "random"),
    ("scales", [1.0, 0.5]),        # not increasing
    ("scales", [0.25, 0.5]),       # does not end in 1.0
    ("scales", [0.0, 1.0]),        # a scale must be > 0
    ("max_evaluations", 0),
    ("learning_rate", 0.0),
    ("max_side", 8),
    ("fourier_exponent", -0.5),
    ("fourier_exponent", float("nan")),
    ("iterations", 10),            # renamed: max_evaluations
    ("schedule", [0.5, 1.0]),      # renamed: scales
])
def test_transfer_params_refuse_bad_settings(key, value):
    with pytest.raises(ValidationError, match=key):
        TransferParams(**{key: value})


def test_transfer_params_accept_every_init_and_coarse_to_fine_scales():
    assert INITS == ("colour_matched", "content", "noise", "fast")
    assert [TransferParams(init=init).init for init in INITS] == list(INITS)
    assert TransferParams(scales=[0.25, 0.5, 1.0]).scales == [0.25, 0.5, 1.0]
    assert TransferParams().scales == "auto"  # halve down to 256 px (auto_scales)
    assert TransferParams(scales=[]).scales == []  # one scale
    assert issubclass(ValidationError, ValueError)


@pytest.mark.parametrize("key", ["content_weight", "style_weight", "tv_weight"])
@pytest.mark.parametrize("value", [-1.0, float("nan"), float("inf")])
def test_loss_weights_refuse_negative_or_non_finite_weights(key, value):
    with pytest.raises(ValidationError, match=key):
        LossWeights(**{key: value})
    assert getattr(LossWeights(**{key: 0.0}), key) == 0.0


def test_stylize_rejects_bad_images_and_arguments(tiny_extractor):
    img = _smooth_image(20, 20, 12)
    with pytest.raises(ValueError, match="shape"):
        stylize(img[..., 0:2], img, extractor=tiny_extractor)
    with pytest.raises(ValueError, match="on_divergence"):
        stylize(img, img, extractor=tiny_extractor, on_divergence="ignore")
    # The schema refuses fewer evaluations than scales before any work starts.
    with pytest.raises(ValidationError, match="at least one per scale"):
        TransferParams(max_evaluations=2, scales=[0.25, 0.5, 1.0])


# ----------------------------------------------------------------------- evaluation & outputs


def test_ssim_to_content():
    img = _smooth_image(40, 30, 13)
    assert ssim_to_content(img, img) == pytest.approx(1.0)
    noisy = np.clip(img + np.random.default_rng(0).normal(0, 60, img.shape), 0, 255).astype(np.uint8)
    assert ssim_to_content(noisy, img) < 0.6


def test_panel_and_loss_plot_are_written(tmp_path):
    from PIL import Image

    img = _smooth_image(40, 30, 14)
    panel = save_panel(img, _stripes(20, 60), img, tmp_path / "out" / "panel.png")
    assert Image.open(panel).size[0] > Image.open(panel).size[1]
    history = [{"step": i, "seconds": 0.1 * i, "total": 10.0 / i, "content": 1.0, "style": 9.0 / i,
                "tv": 0.0} for i in range(1, 6)]
    curve = plot_losses(history, tmp_path / "losses.png")
    multi = plot_losses({"a": history, "b": history}, tmp_path / "multi.png", hline=2.0)
    for path in (curve, multi):
        assert Image.open(path).format == "PNG"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["losses.png", "multi.png", "out"]


# ----------------------------------------------------------------------- issue 17 options


def test_same_inputs_settings_and_seed_give_the_same_bytes(tiny_extractor, tmp_path):
    from artstyle.images import save_image

    content, style = _smooth_image(24, 32, seed=20), _stripes(28, 28)
    settings = TransferParams(max_evaluations=6, init="noise", scales=[0.5, 1.0])
    runs = [stylize(content, style, extractor=tiny_extractor, settings=settings, seed=11)
            for _ in range(2)]
    paths = [save_image(r.image, tmp_path / f"run{i}.png") for i, r in enumerate(runs)]
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert runs[0].summary()["seed"] == 11 and runs[0].extra["seed"] == 11
    other = stylize(content, style, extractor=tiny_extractor, settings=settings, seed=12)
    assert not np.array_equal(other.image, runs[0].image)  # the seed matters (noise start)


def test_preserve_colors_keeps_the_photo_chroma(tiny_extractor):
    # Mid-range photo and a strongly coloured painting: without the option the result
    # takes the painting's colours; with it, the photo's I, Q chroma (YIQ).
    content = np.clip(_smooth_image(24, 32, seed=21) * 0.4 + 70, 0, 255).astype(np.uint8)
    style = np.clip(_stripes(24, 32) * 0.5 + (120, 20, 0), 0, 255).astype(np.uint8)
    plain = stylize(content, style, extractor=tiny_extractor,
                    settings=TransferParams(max_evaluations=4))
    kept = stylize(content, style, extractor=tiny_extractor,
                   settings=TransferParams(max_evaluations=4, preserve_colors=True))
    assert kept.extra["preserve_colors"] and not plain.extra["preserve_colors"]

    def chroma_gap(img):
        return np.abs(rgb_to_yiq(img)[..., 1:] - rgb_to_yiq(content)[..., 1:]).mean()

    assert chroma_gap(kept.image) < 1.0  # grey levels (YIQ units of 0-255 RGB)
    assert chroma_gap(plain.image) > 5.0
    # the luminance is the stylised result's, not the photo's
    np.testing.assert_allclose(rgb_to_yiq(kept.image)[..., 0], rgb_to_yiq(plain.image)[..., 0],
                               atol=1.5)
    # The stylize stage derives its colour-kept output from the plain one: the same pixels.
    derived = plain.with_photo_colours(content)
    np.testing.assert_array_equal(derived.image, kept.image)
    assert derived.extra["preserve_colors"] and derived.evaluations == kept.evaluations
    with pytest.raises(ValueError, match="without preserve_colors"):
        kept.with_photo_colours(content)


def test_keep_colours_is_exact_up_to_rounding_and_resizes_the_photo():
    photo = np.clip(_smooth_image(20, 30, seed=22) * 0.5 + 60, 0, 255).astype(np.uint8)
    result = np.clip(_smooth_image(20, 30, seed=23) * 0.5 + 60, 0, 255).astype(np.uint8)
    out = keep_colours(result, photo)
    assert out.dtype == np.uint8 and out.shape == result.shape
    np.testing.assert_allclose(rgb_to_yiq(out)[..., 1:], rgb_to_yiq(photo)[..., 1:], atol=1.0)
    np.testing.assert_allclose(rgb_to_yiq(out)[..., 0], rgb_to_yiq(result)[..., 0], atol=1.0)
    assert keep_colours(result, np.repeat(np.repeat(photo, 2, 0), 2, 1)).shape == result.shape


def test_masked_gram_of_a_hand_made_tensor():
    import tensorflow as tf

    f = tf.constant(np.arange(1, 9, dtype=np.float32).reshape(1, 2, 2, 2))  # 4 positions, 2 channels
    top_left = tf.constant([[1.0, 0.0], [0.0, 0.0]])
    # only position (0, 0), features (1, 2): G = [[1, 2], [2, 4]] / 1 position
    np.testing.assert_allclose(nst_losses.masked_gram_matrix(gram_matrix, f, top_left)[0],
                               [[1, 2], [2, 4]], rtol=1e-6)
    top_row = tf.constant([[1.0, 1.0], [0.0, 0.0]])  # features (1, 2) and (3, 4) over 2 positions
    np.testing.assert_allclose(nst_losses.masked_gram_matrix(fast_gram_matrix, f, top_row)[0],
                               [[5, 7], [7, 10]], rtol=1e-6)
    np.testing.assert_allclose(nst_losses.masked_gram_matrix(gram_matrix, f, tf.ones((5, 7))),
                               gram_matrix(f), rtol=1e-6)


def test_a_mask_styles_its_white_region_and_keeps_the_photo_elsewhere(tiny_extractor):
    content, style = _smooth_image(24, 32, seed=31), _stripes(24, 32)
    mask = np.zeros((48, 64), np.uint8)   # another size than the photo: resized to it
    mask[:, :24] = 255                    # the left three eighths
    settings = TransferParams(max_evaluations=4)
    masked = stylize(content, style, extractor=tiny_extractor, settings=settings, mask=mask)
    plain = stylize(content, style, extractor=tiny_extractor, settings=settings)
    assert masked.extra["mask"] and not plain.extra["mask"]
    assert np.array_equal(masked.image[:, 14:], content[:, 14:])     # black: the photo exactly
    assert np.abs(masked.image[:, :10].astype(int) - content[:, :10]).mean() > 5  # white: painted
    # the style term is computed over the white region only
    assert masked.final_loss != plain.final_loss


def test_the_style_loss_with_a_mask_counts_only_its_region(tiny_extractor):
    import tensorflow as tf

    content, style = _smooth_image(24, 32, seed=32), _stripes(24, 32)
    x = tf.constant(_smooth_image(24, 32, seed=33)[None] / 255.0, tf.float32)
    left = np.zeros((24, 32), np.float32)
    left[:, :16] = 1.0

    def style_term(mask):
        return float(nst_losses.StyleTransferLoss(tiny_extractor, content, style, mask=mask)(x)["style"])

    assert style_term(np.ones((24, 32), np.float32)) == pytest.approx(style_term(None), rel=1e-5)
    assert style_term(left) != pytest.approx(style_term(None), rel=1e-3)


def test_masks_are_grey_levels_and_an_all_black_one_is_refused():
    rgb = np.zeros((4, 6, 3), np.uint8)
    rgb[:, :3] = 255
    np.testing.assert_array_equal(style_mask(rgb)[0], [255, 255, 255, 0, 0, 0])
    np.testing.assert_array_equal(style_mask(np.eye(2, dtype=bool)), [[255, 0], [0, 255]])
    np.testing.assert_allclose(mask_at(style_mask(rgb), 2, 3), [[1, 0.5, 0], [1, 0.5, 0]], atol=0.01)
    with pytest.raises(ValueError, match="black everywhere"):
        style_mask(np.zeros((5, 5, 3), np.uint8))
    with pytest.raises(ValueError, match="shape"):
        style_mask(np.zeros((2, 2, 2, 2)))
    # floats are [0, 1] in every layout; other integer types are refused, not misread
    np.testing.assert_array_equal(style_mask(np.ones((2, 2, 3), np.float32)), np.full((2, 2), 255))
    with pytest.raises(ValueError, match="uint8 .0-255., bool or float"):
        style_mask(np.ones((2, 2), np.int64))
    with pytest.raises(ValueError, match="empty"):
        style_mask(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="non-finite"):
        style_mask(np.full((2, 2), np.nan))


def test_blend_weights_one_and_zero_equal_the_single_style(tiny_extractor):
    content, a, b = _smooth_image(24, 32, seed=24), _stripes(28, 28), _smooth_image(30, 26, seed=25)
    settings = TransferParams(max_evaluations=5)
    single = stylize(content, a, extractor=tiny_extractor, settings=settings)
    blended = stylize(content, [a, b], extractor=tiny_extractor, settings=settings,
                      blend_weights=[1.0, 0.0])
    assert np.array_equal(single.image, blended.image)
    assert single.final_loss == blended.final_loss
    mixed = stylize(content, [a, b], extractor=tiny_extractor, settings=settings,
                    blend_weights=[3, 1])
    assert mixed.extra["blend_weights"] == [0.75, 0.25]
    assert not np.array_equal(mixed.image, single.image)
    with pytest.raises(ValueError, match="blend weights"):
        stylize(content, [a, b], extractor=tiny_extractor, settings=settings, blend_weights=[1.0])
    with pytest.raises(ValueError, match="not all 0"):
        stylize(content, [a, b], extractor=tiny_extractor, settings=settings, blend_weights=[0, 0])


def test_blended_style_loss_is_the_weighted_sum_of_each_paintings_loss(tiny_extractor):
    import tensorflow as tf

    content, a, b = _smooth_image(16, 16, seed=26), _stripes(16, 16), _smooth_image(16, 16, seed=27)
    x = tf.constant(_smooth_image(16, 16, seed=28)[None] / 255.0, tf.float32)
    la = float(StyleTransferLoss(tiny_extractor, content, a)(x)["style"])
    lb = float(StyleTransferLoss(tiny_extractor, content, b)(x)["style"])
    lab = float(StyleTransferLoss(tiny_extractor, content, [a, b], blend_weights=[0.7, 0.3])(x)["style"])
    assert lab == pytest.approx(0.7 * la + 0.3 * lb, rel=1e-5)


def test_blend_colour_start_matches_the_mixture_of_colours():
    image = _smooth_image(20, 20, seed=29)
    a = np.full((10, 10, 3), (200, 50, 50), np.uint8)
    b = np.full((10, 10, 3), (50, 50, 200), np.uint8)
    out = match_colour(image, [a, b], weights=[1, 1])
    np.testing.assert_allclose(out.reshape(-1, 3).mean(0) * 255, (125, 50, 125), atol=1.0)
    np.testing.assert_array_equal(match_colour(image, [a], weights=[1]), match_colour(image, a))


def test_budget_goes_mostly_to_the_coarse_scales():
    assert _split_budget(150, [0.25, 0.5, 1.0]) == [87, 42, 21]
    assert _split_budget(3, [0.25, 0.5, 1.0]) == [1, 1, 1]
    assert _split_budget(40, [1.0]) == [40]
    assert sum(_split_budget(7, [0.1, 1.0])) == 7 and min(_split_budget(7, [0.1, 1.0])) >= 1


def test_auto_scales_one_up_to_512_px_then_halve_down_to_256_px():
    assert auto_scales(128) == auto_scales(256) == auto_scales(512) == [1.0]
    assert auto_scales(513) == auto_scales(868) == auto_scales(1024) == [0.25, 0.5, 1.0]
    assert auto_scales(512, one_scale_max_side=256) == [0.5, 1.0]
    assert auto_scales(2048) == [0.125, 0.25, 0.5, 1.0]
    assert auto_scales(1024, max_levels=2) == [0.5, 1.0]   # at least one evaluation each
    assert auto_scales(1024, coarsest_side=512) == [0.5, 1.0]


def test_auto_scales_follow_the_output_not_the_photo(tiny_extractor):
    """``scales: auto`` is worked out from the output's side: the photo is reduced to
    ``max_side`` (never enlarged), then halved down to 256 px above 512 px."""
    content = _smooth_image(300, 600, seed=31)
    big = stylize(content, _stripes(30, 30), extractor=tiny_extractor,
                  settings=TransferParams(max_evaluations=3, max_side=1024))
    assert big.extra["scales"] == [0.25, 0.5, 1.0] and big.extra["budgets"] == [1, 1, 1]
    assert big.image.shape == (300, 600, 3)
    at_512 = stylize(content, _stripes(30, 30), extractor=tiny_extractor,
                     settings=TransferParams(max_evaluations=3, max_side=512))
    assert at_512.extra["scales"] == [1.0] and at_512.image.shape == (256, 512, 3)
    small = stylize(content, _stripes(30, 30), extractor=tiny_extractor,
                    settings=TransferParams(max_evaluations=3, max_side=200))
    assert small.extra["scales"] == [1.0] and small.image.shape == (100, 200, 3)


def test_each_stage_keeps_the_content_aspect_ratio(tiny_extractor):
    content = _smooth_image(60, 100, seed=30)  # 3:5
    result = stylize(content, _stripes(30, 30), extractor=tiny_extractor,
                     settings=TransferParams(max_evaluations=6, scales=[0.25, 0.5, 1.0]))
    stages = {r["level"]: (r["height"], r["width"]) for r in result.history}
    assert sorted(stages) == [0, 1, 2]
    assert stages[0] == (15, 25) and stages[1] == (30, 50) and stages[2] == (60, 100)
    for h, w in stages.values():
        assert abs(w / h - 100 / 60) <= 1 / h  # within a pixel's rounding
    assert result.image.shape == (60, 100, 3)


def test_too_large_a_size_is_refused_naming_one_that_fits(vgg_random):
    per_px = (estimate_memory_mb(vgg_random, 100, 100, "adam")
              - estimate_memory_mb(vgg_random, 0, 0, "adam"))
    assert 200 < per_px / 1e4 * 2**20 / 12 < 500  # VGG19: a few hundred floats per pixel
    assert estimate_memory_mb(vgg_random, 100, 100) > estimate_memory_mb(vgg_random, 100, 100, "adam")
    photo_shape = (768, 1024)
    limit = estimate_memory_mb(vgg_random, 384, 512) + 1.0  # 512 px fits, 1024 px does not
    with pytest.raises(OutputTooLarge, match=r"use --max-side (\d+)") as err:
        check_memory(vgg_random, photo_shape, 1024, limit)
    message = str(err.value)
    assert "\n" not in message and "1024" in message
    fits = int(message.split("--max-side ")[1].split()[0])
    assert 512 <= fits < 520
    assert check_memory(vgg_random, photo_shape, fits, limit) <= limit
    # stylize refuses before any evaluation
    with pytest.raises(OutputTooLarge, match="max_side"):
        stylize(np.zeros((768, 1024, 3), np.uint8) + 100, _stripes(32, 32), extractor=vgg_random,
                settings=TransferParams(max_side=1024, memory_limit_mb=int(limit)))
    result_summary_keys = {"peak_memory_mb", "estimated_memory_mb", "seed"}
    assert result_summary_keys <= set(TransferParams.model_fields) | result_summary_keys


def test_repeatable_threads_make_the_512_px_gradient_bit_identical(tmp_path):
    """With one inter-op thread (``repeatable_threads``, called by the command line and the
    stage before TensorFlow starts) the loss-and-gradient pass at 512 px gives the same
    bits call after call, in float32 and bfloat16 (with two, they differed in the 8th
    digit). A fresh process: the setting is read when TensorFlow's runtime starts."""
    import os
    import subprocess
    import sys

    script = tmp_path / "probe.py"
    script.write_text(
        "import os, numpy as np\n"
        "from artstyle.nst import repeatable_threads\n"
        "repeatable_threads()\n"
        "import tensorflow as tf\n"
        "from artstyle.config import LossWeights\n"
        "from artstyle.nst import FeatureExtractor, StyleTransferLoss\n"
        "rng = np.random.default_rng(0)\n"
        "content = rng.integers(0, 256, (342, 512, 3), dtype=np.uint8)\n"
        "style = rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)\n"
        "ex = FeatureExtractor.vgg19(None, seed=0)\n"
        "x = tf.constant(content[None].astype(np.float32) / 255)\n"
        "for dtype in ('float32', 'bfloat16'):\n"
        "    loss = StyleTransferLoss(ex, content, style, LossWeights(), compute_dtype=dtype)\n"
        "    @tf.function\n"
        "    def pass_(z):\n"
        "        with tf.GradientTape() as tape:\n"
        "            tape.watch(z)\n"
        "            total = loss(z)['total']\n"
        "        return tape.gradient(total, z)\n"
        "    grads = [pass_(x).numpy() for _ in range(3)]\n"
        "    print(dtype, all(np.array_equal(grads[0], g) for g in grads[1:]))\n"
        "print(os.environ['TF_NUM_INTEROP_THREADS'])\n")
    env = {k: v for k, v in os.environ.items() if k != "TF_NUM_INTEROP_THREADS"}
    out = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True,
                         timeout=600, check=True).stdout.split()
    assert out == ["float32", "True", "bfloat16", "True", "1"]
