"""The command line: click commands (commands.py), flags to values and event specs
(flags.py), and flags to a ready session over the engine (session.py)."""
