import contextlib
import os


def handler(request, response):
    for fd in range(3, 256):  # the worker's pipes to pfunc among them
        with contextlib.suppress(OSError):
            os.close(fd)
    while True:
        pass
