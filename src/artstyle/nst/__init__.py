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

from artstyle.nst.extractor import FeatureExtractor, default_own_cnn_layers
from artstyle.nst.losses import (
                                 StyleTransferLoss,
                                 content_loss,
                                 gram_matrix,
                                 style_loss,
                                 total_variation_loss,
)
from artstyle.nst.optimise import (
                                 StyleTransferDiverged,
                                 StylizeResult,
                                 repeatable_threads,
                                 stylize,
)
from artstyle.nst.outputs import plot_losses, save_panel, ssim_to_content

__all__ = [
    "FeatureExtractor", "StyleTransferDiverged", "StyleTransferLoss", "StylizeResult",
    "content_loss", "default_own_cnn_layers", "gram_matrix", "plot_losses",
    "repeatable_threads", "save_panel", "ssim_to_content", "style_loss", "stylize",
    "total_variation_loss",
]
