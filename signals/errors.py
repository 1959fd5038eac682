"""One root exception; terse subclasses. Plain ``ValueError`` semantics are kept."""


class TapewatchError(Exception):
    """Root of every error tapewatch raises on purpose."""


class ConfigError(TapewatchError, ValueError):
    """The configuration is wrong. The message names the key and what to write instead."""


class InputError(TapewatchError, ValueError):
    """An input file cannot be read at all (individual bad rows are skipped, not raised)."""


class StateError(TapewatchError, ValueError):
    """A snapshot blob cannot be restored (wrong version or layout): delete the key or restore from a matching release."""
