import os
import signal


def handler(request, response):
    if request.params.get("check"):
        handling = signal.getsignal(signal.SIGUSR1)
        return response.send({"pid": os.getpid(), "default": handling == signal.SIG_DFL})
    signal.signal(signal.SIGUSR1, lambda number, frame: None)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGRTMIN + 3, lambda number, frame: None)  # no name of its own
    return response.send({"pid": os.getpid()})
