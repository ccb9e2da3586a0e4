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


def __getattr__(name: str) -> object:
    """`from pfunc import HandlerError, RangeError`: what a Python handler catches a
    module call's rejection as (pfunc/sandbox/python_rejections.py), imported on use."""
    if name in ("HandlerError", "RangeError"):
        from pfunc.sandbox import python_rejections

        return getattr(python_rejections, name)
    raise AttributeError(f"module 'pfunc' has no attribute {name!r}")
