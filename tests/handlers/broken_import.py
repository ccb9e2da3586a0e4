import json

import definitely_not_installed_pkg


def handler(request):
    return request.ok()
