"""The error types ocrflow raises; each message names what is wrong and what to do."""


class OcrflowError(Exception):
    """Base class of every error ocrflow raises on purpose."""


class InputError(OcrflowError, ValueError):
    """An input (file, URL, array, PDF) that cannot be read."""


class ModelError(OcrflowError):
    """A model that cannot be found, fetched, verified or loaded."""


class DeviceError(OcrflowError):
    """A device that was asked for but cannot be had (never a silent CPU fall-back)."""


class ConfigError(OcrflowError, ValueError):
    """A bad pipeline setting: unknown key, wrong type or value."""


class Cancelled(OcrflowError):
    """The caller's cancel event was set (the service's request timeout): reading stopped."""
