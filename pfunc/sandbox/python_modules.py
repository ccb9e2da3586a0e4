"""A Python handler's module in its worker (python_worker.py): loaded from the source the
host sent, and what a new load forgets (another test run's): the handler module and the
project's own helper modules it imported from its folder, so that their module-level
state and top-level code start afresh too, as in a new instance (docs/testing.md).
Installed packages stay imported: they are not the project's code, and an extension
module cannot be imported twice."""

from __future__ import annotations

import linecache
import os
import sys
import sysconfig
import types
from collections.abc import Callable
from typing import Any

HANDLER_MODULE = "pfunc_handler"


def load_handler(path: str, source: str) -> Callable[..., Any]:
    """The handler from the source the host sent (the version its pool loaded), compiled
    under the file's name so tracebacks point at it."""
    linecache.cache[path] = (len(source), None, source.splitlines(True), path)
    module = types.ModuleType(HANDLER_MODULE)
    module.__file__ = path
    sys.modules[HANDLER_MODULE] = module
    exec(compile(source, path, "exec"), module.__dict__)
    handler = getattr(module, "handler", None)
    if not callable(handler):
        raise AttributeError(
            "the module defines no handler function; write def handler(request): ... (or async def)"
        )
    return handler


def _installed_places() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    places = {paths.get(name) for name in ("stdlib", "platstdlib", "purelib", "platlib")}
    return tuple(os.path.realpath(place) + os.sep for place in places if place)


def forget_handler_modules(handler_file: str) -> None:
    """Drop the handler module and every module loaded from its folder (a project's
    virtual environment kept there excepted)."""
    sys.modules.pop(HANDLER_MODULE, None)
    folder = os.path.realpath(os.path.dirname(handler_file)) + os.sep
    installed = _installed_places()
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if not isinstance(file, str):
            continue
        where = os.path.realpath(file)
        if where.startswith(folder) and not where.startswith(installed):
            del sys.modules[name]


# Import names whose package on PyPI is named otherwise: `pip install yaml` fails or
# installs something else, and `sklearn` is a stub that refuses to install.
_PACKAGE_OF = {
    "attr": "attrs",
    "bs4": "beautifulsoup4",
    "Crypto": "pycryptodome",
    "cv2": "opencv-python",
    "dateutil": "python-dateutil",
    "dotenv": "python-dotenv",
    "jwt": "PyJWT",
    "magic": "python-magic",
    "OpenSSL": "pyOpenSSL",
    "PIL": "Pillow",
    "serial": "pyserial",
    "skimage": "scikit-image",
    "sklearn": "scikit-learn",
    "yaml": "PyYAML",
}


def missing_module_advice(failure: ModuleNotFoundError) -> str:
    """What a handler that imports a module this Python cannot find is told: a file of
    the project, or the package to install into the Python pfunc runs handlers with."""
    top = (failure.name or "").split(".")[0]
    package = _PACKAGE_OF.get(top, top)
    return (
        f"{failure}; the handler imports a module this Python cannot find: a file of the "
        f"project ({top}.py beside the handler) or a package it does not have "
        f"({sys.executable} -m pip install {package})"
    )
