import json  # noqa: F401  (a handler that imports a package this Python lacks)

import definitely_not_installed_pkg  # noqa: F401


def handler(request):
    return request.ok()
