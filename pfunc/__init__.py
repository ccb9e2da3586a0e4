"""pfunc: a local emulator for PubNub Functions.

Kept free of imports so that `pfunc run` starts fast; see cli/commands.py for the entry point.
"""

__version__ = "0.1.0"


def require(name: str) -> object:
    """Built-in modules for Python handlers: `from pfunc import require`.

    Only meaningful inside a handler that pfunc runs (its worker process answers).
    """
    from pfunc.sandbox.python_api import require as worker_require

    return worker_require(name)
