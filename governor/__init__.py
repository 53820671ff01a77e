"""governor: policy-as-code governance for AI agents. Every rule is Rego; Python gathers facts."""

from governor.errors import (
    BundleError,
    BundleSignatureError,
    ConfigurationError,
    EngineError,
    EngineTimeout,
    EngineUndefined,
    GovernanceError,
    PolicyCompileError,
)

__version__ = "0.3.0.dev0"

__all__ = [
    "BundleError",
    "BundleSignatureError",
    "ConfigurationError",
    "EngineError",
    "EngineTimeout",
    "EngineUndefined",
    "GovernanceError",
    "PolicyCompileError",
    "__version__",
]
