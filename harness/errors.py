"""Errors a user can act on. Each message names the file/record and what to do."""


class IadbenchError(Exception):
    """Base class: the CLI prints these as one clear line, without a traceback."""


class DataError(IadbenchError):
    """A question set or dataset on disk is malformed, incomplete or unsafe."""


class ConfigError(IadbenchError):
    """A suite, flag or model name that cannot be resolved."""


class RunFolderError(IadbenchError):
    """A run folder that cannot be created, read or resumed."""


class FatalBackendError(IadbenchError):
    """The backend cannot answer anything (bad key, unknown model): stop the run, keep its samples."""
