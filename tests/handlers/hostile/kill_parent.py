import os


def handler(request, response):
    os.kill(os.getppid(), 9)  # meant for pfunc; reaches only the worker's own parent
    return response.send({"alive": True})
