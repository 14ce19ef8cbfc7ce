"""Neural style transfer (Gatys, Ecker & Bethge, "A Neural Algorithm of Artistic Style", 2015).

The pixels of one image are optimised so that its CNN feature maps match the *content*
photo at the content layer(s) and its Gram matrices (feature correlations) match the
*style* painting at the style layers, with VGG19 (ImageNet) or one of our own
art-movement CNNs as the feature extractor.

Read in this order:

:mod:`artstyle.nst.losses`
    The loss: Gram matrix, style, content and total-variation terms (as the keras.io
    and TensorFlow examples).
:mod:`artstyle.nst.extractor`
    :class:`FeatureExtractor`: content and style features of a backbone.
:mod:`artstyle.nst.inputs`
    Working sizes and the colour-matched start image.
:mod:`artstyle.nst.optimise`
    :func:`stylize`: L-BFGS or Adam over one or several scales.
:mod:`artstyle.nst.outputs`
    SSIM to the photo, panels and loss curves.
:mod:`artstyle.nst.feedforward`
    The feed-forward engine (Ghiasi et al. 2017, Magenta): one network pass in
    onnxruntime, no TensorFlow; the Gatys engine can start from its result (``init: fast``).

Beside them, the speed machinery: :mod:`artstyle.nst.fast_gradient` (hand-written
image gradients, the same loss values; optionally bfloat16 convolutions, values within
about 1%) and :mod:`artstyle.nst.fourier` (Fourier parametrisation for L-BFGS). Defaults of every
setting live in :mod:`artstyle.config` (``TransferParams``, ``LossWeights``); the
pipeline stage and the command line are wired in :mod:`artstyle.stylize`.

Example
-------
>>> from artstyle.config import TransferParams
>>> from artstyle.nst import FeatureExtractor, stylize
>>> extractor = FeatureExtractor.vgg19("models/pretrained/vgg19_notop.weights.h5")
>>> result = stylize(photo, painting, extractor=extractor,
...                  settings=TransferParams(max_side=256))       # doctest: +SKIP
"""

import importlib

#: Public names and the submodule that defines each. Imported on first use (PEP 562), so
#: that ``artstyle.nst.feedforward`` and ``artstyle.nst.inputs`` load without TensorFlow.
_EXPORTS = {
    "FeatureExtractor": "extractor", "default_own_cnn_layers": "extractor",
    "StyleTransferLoss": "losses", "content_loss": "losses", "gram_matrix": "gram",
    "style_loss": "losses", "total_variation_loss": "losses",
    "StyleTransferDiverged": "optimise", "StylizeResult": "optimise",
    "repeatable_threads": "optimise", "stylize": "optimise",
    "plot_losses": "outputs", "save_panel": "outputs", "ssim_to_content": "outputs",
    "stylize_fast": "feedforward",
}

__all__ = [
    "FeatureExtractor", "StyleTransferDiverged", "StyleTransferLoss", "StylizeResult",
    "content_loss", "default_own_cnn_layers", "gram_matrix", "plot_losses",
    "repeatable_threads", "save_panel", "ssim_to_content", "style_loss", "stylize",
    "stylize_fast", "total_variation_loss",
]


def __getattr__(name: str):
    if name in _EXPORTS:
        module = _EXPORTS[name]
        package = "artstyle" if module == "gram" else "artstyle.nst"
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'artstyle.nst' has no attribute {name!r}")
