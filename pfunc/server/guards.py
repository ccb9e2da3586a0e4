"""Who may call pfunc's own endpoints (the console's, /pfunc/run, /pfunc/status), as
against PubNub's API, which answers any client and any page (CORS) as PubNub does."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from aiohttp import web

from pfunc.server.wire import pubnub_error

LOOPBACK = {"127.0.0.1", "::1", "localhost"}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _host_name(request: web.Request) -> str:
    """The name the request's Host header gives; "" for one that names no host (`[::1`,
    `[zz]`: urlsplit refuses them), which no guard takes for this machine."""
    try:
        return urlsplit(f"//{request.host}").hostname or ""
    except ValueError:
        return ""


def _other_site(request: web.Request) -> str | None:
    """Why `request` comes from a page of another site: its Origin, or (from this
    machine) a name rebound to it (DNS rebinding: a site's own name, answered here)."""
    origin = request.headers.get("Origin")
    if origin is not None:
        try:
            origin_host = urlsplit(origin).netloc
        except ValueError:  # an Origin no browser sends: not this page's
            origin_host = None
        if origin_host != request.host:
            return f"pages of {origin}"
    host = _host_name(request)
    if request.remote in LOOPBACK and host not in LOOPBACK:
        return f"requests for {host}"
    return None


def console_only(handler: Handler) -> Handler:
    """Refuse anything but the console's own page on this machine."""

    async def guarded(request: web.Request) -> web.StreamResponse:
        if request.remote not in LOOPBACK or _host_name(request) not in LOOPBACK:
            return pubnub_error(403, "the pfunc console answers on this machine (loopback) only")
        if (why := _other_site(request)) is not None:
            return pubnub_error(403, f"the pfunc console does not answer {why}")
        return await handler(request)

    return guarded


def no_other_site(handler: Handler) -> Handler:
    """pfunc's endpoints for curl and scripts (run a function, the status): any client,
    but no page of another site, which could otherwise run functions behind your back."""

    async def guarded(request: web.Request) -> web.StreamResponse:
        if (why := _other_site(request)) is not None:
            return pubnub_error(403, f"pfunc's own endpoints do not answer {why}")
        return await handler(request)

    return guarded
