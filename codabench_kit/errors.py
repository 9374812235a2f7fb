"""The project's own exceptions. Core code raises these; only the CLI turns them into click errors."""


class CbkError(Exception):
    """Base class: a failure the user can understand and usually fix."""


class DataError(CbkError):
    """The training or evaluation data is not what cbk expects."""


class PluginError(CbkError):
    """A plugin or component is missing, broken, or clashes with another."""


class UnknownComponentError(PluginError):
    """A component name that no installed plugin registers."""


class DuplicateComponentError(PluginError):
    """Two plugins register the same component name."""


class OptionError(CbkError):
    """An option is unknown, malformed or clashes with another: a command's, or a
    component's (``--set name.key=value`` or cbk.toml). The CLI shows it as a usage error."""


class BuildError(CbkError):
    """A build stage failed."""


class OutputExistsError(CbkError):
    """An output file already exists; cbk never overwrites outputs."""


class ZipRejectedError(CbkError):
    """A submission zip is unsafe or malformed and was not unpacked."""


class HistoryError(CbkError):
    """The folder of submissions cannot be listed (``cbk history``)."""


class TargetError(CbkError):
    """A target environment (``cbk validate --target``) is unknown or cannot be made."""


def with_article(word: str) -> str:
    """``word`` after its indefinite article, for messages: ``an int``, ``a float``,
    ``an augmenter``, ``a backbone``. By the first letter: a vowel takes ``an``."""
    return f"{'an' if word[:1].lower() in 'aeiou' else 'a'} {word}"
