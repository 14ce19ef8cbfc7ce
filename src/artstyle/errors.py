"""The project's expected failures: bad input or a missing prerequisite, not a bug.

Every exception that a user can cause and fix (a misspelt param, an unusable dataset, a
failed download, an unsafe archive, a missing model) derives from :class:`ArtstyleError`
as well as from the built-in type it always had (``ValueError``, ``RuntimeError``...).
Stage scripts and the command line print such an error as one line, without a
traceback, and exit with status 2; anything else is a bug and keeps its traceback.
"""


class ArtstyleError(Exception):
    """Base of the expected failures; its message says what is wrong and what to do."""


class InvalidInput(ArtstyleError, ValueError):
    """A file, option or value the user gave cannot be used (the message says why)."""


class MissingInput(ArtstyleError, FileNotFoundError):
    """A file the user named does not exist (the message names it)."""
