"""What every host call of one module's method shares, worked out once from the registry
(pfunc/modules/__init__.py) rather than at each call: the execution loop's table of
routes."""

from __future__ import annotations

from pfunc.modules import MODULES, operation_kind
from pfunc.modules.calls import HandlerCallError
from pfunc.sandbox.inline import is_read


class Route:
    """What every call of one module's method shares, worked out once (the registry does
    not change): whether it is a host module's at all, the operation it spends, whether
    the module has the method, whether it only reads."""

    __slots__ = ("host", "internal", "kind", "label", "read", "unknown")

    def __init__(self, module_name: str, method: str) -> None:
        spec = MODULES.get(module_name)
        self.label = f"{module_name}.{method}"
        self.host = spec is not None and spec.host  # (else no call of it is performed)
        self.internal = spec is not None and spec.internal
        self.kind = operation_kind(module_name, method)
        self.unknown = (
            HandlerCallError("TypeError", f"{self.label} {spec.unknown_method}")
            if spec is not None and spec.methods and method not in spec.methods
            else None
        )
        self.read = is_read(module_name, method)


_ROUTES: dict[tuple[str, str], Route] = {}
# Routes kept at most: a handler that forges calls under endless names gets no more.
_MOST_ROUTES = 4096


def route_of(module_name: str, method: str) -> Route:
    route = _ROUTES.get((module_name, method))
    if route is None:
        route = Route(module_name, method)
        if len(_ROUTES) < _MOST_ROUTES:
            _ROUTES[(module_name, method)] = route
    return route
