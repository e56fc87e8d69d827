"""An embedded executor that speaks the Inngest SDK protocol.

Apps served by the official Inngest Python SDK run on it unchanged, as they
would on the official dev server. It knows nothing about Digest.
"""

from devserver.config import ExecutorConfig
from devserver.server import create_app, run

__all__ = ["ExecutorConfig", "create_app", "run"]
