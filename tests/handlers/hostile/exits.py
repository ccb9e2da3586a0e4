import os


def handler(request, response):
    os._exit(3)
