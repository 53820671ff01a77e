"""The SDK's version (sent in the User-Agent)."""

__version__ = "0.3.0.dev0"
