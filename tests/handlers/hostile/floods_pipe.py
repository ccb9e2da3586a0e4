import os

from pfunc.sandbox.python_api import CONNECTION


def handler(request, response):
    # Bytes to pfunc without ever ending a line: the host must still stop it in time.
    chunk = b"x" * 65536
    while True:
        os.write(CONNECTION.outgoing.fileno(), chunk)
