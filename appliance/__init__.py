"""appliance: a home-server appliance that downloads media with yt-dlp."""

from typing import Any


def __getattr__(name: str) -> Any:
    # Read when first asked: importlib.metadata is 50 ms of CPU that an interpreter which
    # never asks (``appliance serve``'s first, which runs itself again) would spend for nothing.
    if name != "__version__":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("appliance")
    except PackageNotFoundError:  # running from a source tree that is not installed
        found = "0.0.0"
    globals()["__version__"] = found
    return found
