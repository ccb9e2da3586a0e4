"""The xhr module: `fetch` through aiohttp, or answered by mocks from pfunc.toml.

aiohttp is imported on the first real request only (it costs ~190 ms at import).
Offline (--offline, and always in test runs) an unmatched request rejects with a
one-line error that names the URL, and the report's warnings show the mock to add,
instead of reaching the network.
"""

from __future__ import annotations

import fnmatch
import http
import json
import time
import urllib.parse
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from pfunc import jsonio
from pfunc.modules.calls import CallContext, HandlerCallError, JSArg, padded_args
from pfunc.modules.vault import secret_pattern

if TYPE_CHECKING:
    import aiohttp

    from pfunc.project import MockRule

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD")
DEFAULT_TIMEOUT_MS = 10_000


_DEFAULT_PORTS = {"http": 80, "https": 443}
_REASONS = {status.value: status.phrase for status in http.HTTPStatus}


def addressed(url: str) -> str:
    """A URL as the request is addressed: scheme and host in lower case, with no user
    info and no default port, so that a mock of https://api.example.com/* answers
    https://user:pw@API.example.com:443/a too. A URL that does not parse stays as it is."""
    try:
        parts = urllib.parse.urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:  # a port that is not a number (a pattern's `*`)
        return url
    if not parts.scheme or host is None:
        return url
    scheme = parts.scheme.lower()
    if ":" in host:  # IPv6, bracketed again
        host = f"[{host}]"
    netloc = host if port in (None, _DEFAULT_PORTS.get(scheme)) else f"{host}:{port}"
    return urllib.parse.urlunsplit((scheme, netloc, parts.path, parts.query, parts.fragment))


def _glob(text: str, pattern: str) -> bool:
    """`*` wildcards only: a [ is itself (an IPv6 host), not a character class."""
    return fnmatch.fnmatchcase(text, pattern.replace("[", "[[]"))


def match_mock(mocks: list[MockRule], method: str, url: str) -> MockRule | None:
    target = addressed(url)
    for mock in mocks:
        if mock.method not in (None, method):
            continue
        # As written, or as addressed (a pattern with * for a port is only the former).
        if _glob(url, mock.url) or _glob(target, addressed(mock.url)):
            return mock
    return None


class XhrModule:
    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    def key_of(self, method: str, args: list[JSArg]) -> str | None:
        return args[0].value if args and isinstance(args[0].value, str) else None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def waits(self, method: str, args: list[JSArg], context: CallContext) -> bool:
        """Only a request that goes out waits: a mocked one, a refused one (offline, or
        arguments fetch rejects) is answered at once, in the order it was made."""
        try:
            url, request_method, _ = _request_of(method, args)
        except HandlerCallError:
            return False
        return match_mock(context.mocks, request_method, url) is None and not context.offline

    async def call(self, method: str, args: list[JSArg], context: CallContext) -> str | None:
        url, request_method, options = _request_of(method, args)
        headers = options.get("headers") or {}
        if not isinstance(headers, dict):
            raise HandlerCallError("TypeError", "xhr.fetch: headers must be an object")
        body = options.get("body")
        if body is not None and not isinstance(body, str):
            # Production sends an object body as JSON (handlers, PubNub's own among them,
            # post objects to JSON-only APIs and work there); the documented type is a string.
            body = jsonio.compact(body)
            if not any(str(name).lower() == "content-type" for name in headers):
                headers = {**headers, "Content-Type": "application/json"}
            context.warn(
                f"xhr.fetch {url}: body is {options_arg_type(body)}, sent as JSON; the "
                "documented type is a string (JSON.stringify it to be explicit)"
            )
        elif body is not None and not any(str(name).lower() == "content-type" for name in headers):
            # Text, as fetch (and node-fetch) label a string body; aiohttp would say bytes.
            headers = {**headers, "Content-Type": "text/plain;charset=UTF-8"}
        mock = match_mock(context.mocks, request_method, url)
        if mock is not None:
            answer = mock.response(url)
            # The status's reason phrase, as a server would send it ("OK", "Not Found").
            answer["statusText"] = _REASONS.get(answer["status"], "")
            answer["buffer"] = list(str(answer["body"]).encode())
            return json.dumps(answer)
        if context.offline:
            # The handler gets one line, as a network error would be; the mock that would
            # answer it is the report's, where a handler's own logging cannot repeat it.
            context.warn(_mock_hint(request_method, url, context))
            raise HandlerCallError(
                "Error",
                f"xhr.fetch: no mock matches {request_method} {url} and pfunc is offline, so "
                "the request was not sent (the report's warnings give a mock for it)",
            )
        timeout_ms = options.get("timeout", DEFAULT_TIMEOUT_MS)
        # Only a timeout the handler passed may be named as its option in a timeout error.
        given_timeout = "timeout" in options
        if not isinstance(timeout_ms, int | float) or timeout_ms <= 0:
            raise HandlerCallError(
                "TypeError", "xhr.fetch: timeout must be a positive number of ms"
            )
        seconds = timeout_ms / 1000
        if context.deadline is not None:
            seconds = min(seconds, max(context.deadline - time.monotonic(), 0.001))
        return json.dumps(
            await self._send(
                request_method,
                url,
                {str(k): str(v) for k, v in headers.items()},
                body,
                seconds,
                _timeout_cause(timeout_ms, given_timeout, seconds),
            )
        )

    async def _send(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: str | None,
        seconds: float,
        timeout_cause: str,
    ) -> dict[str, Any]:

        import aiohttp

        if self._session is None:
            self._session = aiohttp.ClientSession(auto_decompress=True)
        try:
            async with self._session.request(
                method,
                url,
                headers=headers,
                data=body.encode() if body is not None else None,
                timeout=aiohttp.ClientTimeout(total=seconds),
                allow_redirects=True,
            ) as response:
                raw = await response.read()
                return {
                    "status": response.status,
                    "statusText": response.reason or "",
                    "headers": _combined_headers(response.headers.items()),
                    "body": raw.decode(response.charset or "utf-8", errors="replace"),
                    "buffer": list(raw),  # the bytes, for binary answers ($buffer)
                    "url": str(response.url),
                }
        except TimeoutError:
            raise HandlerCallError(
                "Error",
                f"xhr.fetch: {method} {url} timed out after {round(seconds * 1000)} ms "
                f"({timeout_cause})",
            ) from None
        except aiohttp.ClientError as error:
            raise HandlerCallError(
                "Error", f"xhr.fetch: {method} {url} failed: {error or type(error).__name__}"
            ) from None


def _timeout_cause(timeout_ms: float, given: bool, seconds: float) -> str:
    """Why a request got the time it got, for its timeout error: the handler's own
    option or (without one) the default, and whether the execution's time limit cut it.
    A handler that passed no option must not read of one it never gave."""
    bounded = seconds < timeout_ms / 1000
    if given:
        limit = ", bounded by the execution's time limit" if bounded else ""
        return f"timeout option {timeout_ms:g} ms{limit}"
    if bounded:
        return (
            "the execution's remaining time: no timeout option was given, and the "
            f"default {timeout_ms:g} ms was bounded by the execution's time limit"
        )
    return f"the default timeout of {timeout_ms:g} ms: no timeout option was given"


def _combined_headers(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Response headers by lower-case name; a header the response repeats keeps every
    value, joined with ", " in order, as Fetch's Headers.get() (and PubNub's xhr) give."""
    headers: dict[str, str] = {}
    for name, value in items:
        key = name.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return headers


def _request_of(method: str, args: list[JSArg]) -> tuple[str, str, dict[str, Any]]:
    """(url, HTTP method, options) of a fetch, or the error its Promise rejects with."""
    if method != "fetch":
        raise HandlerCallError("TypeError", f"xhr.{method} is not a function")
    url_arg, options_arg = padded_args(args, 2)[:2]
    url = url_arg.value
    if not isinstance(url, str) or not url.lower().startswith(("http://", "https://")):
        raise HandlerCallError(
            "TypeError",
            "xhr.fetch: the URL must be an http:// or https:// string, got " + url_arg.describe(),
        )
    options = options_arg.value if not options_arg.is_undefined else {}
    if options is None:
        options = {}
    if not isinstance(options, dict):
        raise HandlerCallError("TypeError", "xhr.fetch: options must be an object")
    request_method = str(options.get("method", "GET")).upper()
    if request_method not in METHODS:
        raise HandlerCallError(
            "TypeError",
            f"xhr.fetch: method {request_method!r} is not one of {', '.join(METHODS)}",
        )
    return url, request_method, options


def options_arg_type(body_json: str) -> str:
    """ "an object" or "an array", from the JSON text an object body became."""
    return "an array" if body_json.startswith("[") else "an object"


def _mock_hint(method: str, url: str, context: CallContext) -> str:
    """The mock that would answer an offline fetch pfunc refused. A vault value in the
    URL (a webhook's secret path) is a `*` there: the mock still matches, and the report
    shows no secret."""
    secret = secret_pattern(context.secrets_read)
    pattern = url if secret is None else secret.sub("*", url)
    hidden = "# * stands for the vault value in the URL (a * alone answers every such request)\n"
    note = "" if pattern == url else hidden
    return (
        f"xhr.fetch of {method} {pattern} was not sent (offline, and no mock matches it); "
        f'add a mock to pfunc.toml:\n[[mocks]]\n{note}url = "{pattern}"\n'
        f'method = "{method}"\nstatus = 200\njson = {{ ok = true }}'
    )
