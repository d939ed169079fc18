"""The errors genembed raises for what a user got wrong: bad input, a bad file, a bad checkpoint, a
missing optional dependency, a bad option.

Every one derives from GenembedError, and its message is one line naming the problem (and the file
and line, where there is one). `genembed` (cli.main) prints such an error as one `error: ...` line,
exit code 2; any other exception is a bug and shows its traceback. The subclasses keep the built-in
class a library user would catch (ValueError, TypeError, ImportError) as a second base.
"""
from __future__ import annotations


class GenembedError(Exception):
    """The base of every user-facing error genembed raises."""


class InputError(GenembedError, ValueError):
    """A value the user gave (a text, a file, an option, a setting) that genembed cannot use."""


class InputTypeError(GenembedError, TypeError):
    """A value of the wrong type where the user's input goes (e.g. encode() given a non-string)."""


class MissingDependency(GenembedError, ImportError):
    """An optional dependency is not installed; the message names the `pip install` that adds it."""
