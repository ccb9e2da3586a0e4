"""pfunc: a local emulator for PubNub Functions.

Kept free of imports so that `pfunc run` starts fast; see cli.py for the entry point.
"""

__version__ = "0.1.0"
