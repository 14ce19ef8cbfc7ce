"""The members of the model zoo, one module per kind.

* :mod:`~artstyle.members.base`: :class:`TrainedClassifier`, the one type for "a trained
  classifier", and the checks every kind shares;
* :mod:`~artstyle.members.neural`: Keras models of ``models:`` and ``grid:``;
* :mod:`~artstyle.members.style`: scikit-learn heads on style descriptors (``style_models:``);
* :mod:`~artstyle.members.boosted`: XGBoost on a neural model's embeddings (``boost:``);
* :mod:`~artstyle.members.ensemble`: means or stacks of other members (``ensembles:``).

Each kind offers ``load(name) -> TrainedClassifier`` and ``split_probabilities(...)``
(what its ``evaluate`` stage scores); :mod:`artstyle.classifier` picks the kind by name.
"""
