"""fmstack: self-hosted infrastructure to share, train, compress and serve foundation models."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("fmstack")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
