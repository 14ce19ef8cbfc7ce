"""artstyle: art-movement recognition and neural style transfer as a reproducible DVC pipeline."""

__version__ = "0.1.0"
