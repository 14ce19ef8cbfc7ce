"""Patterns in the paintings and in a trained classifier: the ``patterns`` stage.

``gradcam``     where the model looks: Grad-CAM of the last convolutional feature map
``palettes``    the dominant colours of each movement (k-means in CIELAB) and colour statistics
``collection``  the embedding map (t-SNE), prototypes, outliers, neighbours, confused pairs
``plots``       the figures of all of the above
``page``        ``reports/patterns/index.html``
``report``      choosing the model, the stage's outputs
``explain``     ``artstyle explain``: one image's movements, Grad-CAM and neighbours
"""
