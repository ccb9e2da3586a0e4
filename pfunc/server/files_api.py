"""PubNub's File Sharing API over the project's files (pfunc/files.py): generate an upload
URL, the upload itself (the part S3 plays for PubNub), list, download, delete, and the
file message publish; in the wire shapes of the recorded exchanges (../shared/wire) and
the SDKs' parsers.

The upload URL points at this server (the Host the client used) with S3-like form fields;
the `Policy` field names the channel, id and name, signed with a secret of this server, so
an upload can only create the file its generate-upload-url call announced.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import mimetypes
import os
import re
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote
from xml.sax.saxutils import escape

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from pfunc import jsonio
from pfunc.channels import custom_type_problem, name_problem
from pfunc.files import MAX_FILE_BYTES, Files, FileTooLarge, is_file_id, name_problem_of_file
from pfunc.server.pubnub_api import (
    MAX_PUBLISH_URL_BYTES,
    PUBLISH_PARAMS,
    publish_answer,
    publish_error,
)
from pfunc.server.state import DevState
from pfunc.server.wire import changing_get, client_meta, pubnub_error, wire_json, wrong_key

BASE = "/v1/files/{sub}/channels/{channel}"
UPLOAD = "/pfunc/files/upload"
DOWNLOAD = "/pfunc/files/download"
SERVICE = "files"
UPLOAD_SECONDS = 3600  # how long an upload URL stays valid
DOWNLOAD_SECONDS = 3600  # how long the link a download redirects to stays valid
_AMZ_DATE = "%Y%m%dT%H%M%SZ"
MAX_FIELD_BYTES = 16 * 1024  # one form field besides the file
MAX_FORM_FIELDS = 32  # the SDKs send about ten; more is no upload an SDK makes
MAX_DRAIN_BYTES = 64 * 1024 * 1024  # read past a refused upload, so the client sees why
CHUNK = 64 * 1024
_HOST = re.compile(r"^[A-Za-z0-9.\-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$")


def s3_error(status: int, code: str, message: str, **details: Any) -> web.Response:
    """An error as S3 answers an upload: XML, which the SDKs read the <Message> of."""
    extra = "".join(f"<{key}>{escape(str(value))}</{key}>" for key, value in details.items())
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{escape(message)}</Message>{extra}"
        f"<RequestId>{os.urandom(8).hex().upper()}</RequestId></Error>"
    )
    return web.Response(status=status, text=body, content_type="application/xml")


def _origin(request: web.Request) -> str:
    """This server as the client reached it: its Host header, when that is a host name
    or address (and port), else the socket's own address."""
    host = request.headers.get("Host", "")
    if not _HOST.match(host):
        address = request.transport.get_extra_info("sockname") if request.transport else None
        host = f"{address[0]}:{address[1]}" if address else "127.0.0.1"
    return f"{request.scheme}://{host}"


class FilesAPI:
    def __init__(self, state: DevState) -> None:
        self.state = state
        self._secret = os.urandom(32)  # signs upload policies; new at every start

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post(BASE + "/generate-upload-url", self.generate_upload_url),
            web.get(BASE + "/files", self.list_files),
            web.get(BASE + "/files/{id}/{name}", self.download),
            web.delete(BASE + "/files/{id}/{name}", self.delete),
            changing_get(
                "/v1/files/publish-file/{pub}/{sub}/{sig}/{channel}/{callback}/{message:.*}",
                self.publish_file,
            ),
            web.post(UPLOAD, self.upload),
            web.get(DOWNLOAD + "/{id}/{name}", self.serve_bytes),
        ]

    @property
    def files(self) -> Files:
        assert self.state.engine.files is not None
        return self.state.engine.files

    def _refused(self, request: web.Request) -> web.Response | None:
        refused = wrong_key(request, self.state.engine.runtime.keyset.subscribe_key, SERVICE)
        if refused:
            return refused
        problem = name_problem(request.match_info["channel"])
        if problem:
            return pubnub_error(400, f"Invalid channel: {problem}", SERVICE)
        return None

    # --- upload ---------------------------------------------------------------------------

    async def generate_upload_url(self, request: web.Request) -> web.Response:
        refused = self._refused(request)
        if refused:
            return refused
        try:
            name = jsonio.loads(await request.read()).get("name")
        except (ValueError, AttributeError):
            return pubnub_error(400, 'the body must be JSON: {"name": "file name"}', SERVICE)
        problem = name_problem_of_file(name)
        if problem:
            return pubnub_error(400, problem, SERVICE)
        file_id = self.files.new_id()
        expires = datetime.fromtimestamp(time.time() + UPLOAD_SECONDS, UTC)
        policy = {
            "expiration": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "conditions": [
                {"channel": request.match_info["channel"]},
                {"id": file_id},
                {"name": name},
                ["content-length-range", 0, MAX_FILE_BYTES],
            ],
        }
        encoded = base64.b64encode(json.dumps(policy).encode()).decode()
        now = datetime.now(UTC)
        fields = {
            "tagging": "<Tagging><TagSet><Tag><Key>ObjectTTLInDays</Key><Value>1</Value>"
            "</Tag></TagSet></Tagging>",
            "key": f"{self.files.keyset}/{file_id}/{name}",
            "Content-Type": _content_type(name),
            "X-Amz-Credential": f"PFUNC/{now:%Y%m%d}/local/s3/aws4_request",
            "X-Amz-Security-Token": "",
            "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
            "X-Amz-Date": f"{now:%Y%m%dT%H%M%SZ}",
            "Policy": encoded,
            "X-Amz-Signature": self._sign(encoded),
        }
        return wire_json(
            {
                "status": 200,
                "data": {"id": file_id, "name": name},
                "file_upload_request": {
                    "url": _origin(request) + UPLOAD,
                    "method": "POST",
                    "expiration_date": policy["expiration"],
                    "form_fields": [{"key": k, "value": v} for k, v in fields.items()],
                },
            }
        )

    def _sign(self, policy: str) -> str:
        return hmac.new(self._secret, policy.encode(), hashlib.sha256).hexdigest()

    def _policy(self, fields: dict[str, str]) -> tuple[str, str, str] | None:
        """(channel, id, name) from a signed, unexpired policy; None otherwise."""
        policy = fields.get("Policy", "")
        if not hmac.compare_digest(self._sign(policy), fields.get("X-Amz-Signature", "")):
            return None
        try:
            decoded = json.loads(base64.b64decode(policy, validate=True))
            conditions = {k: v for item in decoded["conditions"][:3] for k, v in item.items()}
            expires = datetime.strptime(decoded["expiration"], "%Y-%m-%dT%H:%M:%SZ")
        except (ValueError, KeyError, TypeError, AttributeError, binascii.Error):
            return None
        if expires.replace(tzinfo=UTC).timestamp() < time.time():
            return None
        return conditions["channel"], conditions["id"], conditions["name"]

    async def upload(self, request: web.Request) -> web.Response:
        """The SDK's multipart form: the fields generate-upload-url gave, then the file.
        Read as it streams (this endpoint alone takes more than client_max_size); 204 as
        S3 answers, or S3's XML error with nothing kept."""
        try:
            reader = await request.multipart()
        except (AssertionError, ValueError, KeyError):
            return s3_error(
                400,
                "MalformedPOSTRequest",
                "The body of your POST request is not well-formed multipart/form-data.",
            )
        fields: dict[str, str] = {}
        while True:
            try:
                part = await reader.next()
            except (ValueError, HttpProcessingError):  # a body cut short, not multipart after
                part = False  # all, or a part's header line that is no header (no colon)
            if part is False or len(fields) >= MAX_FORM_FIELDS:
                return s3_error(
                    400,
                    "MalformedPOSTRequest",
                    "The body of your POST request is not well-formed multipart/form-data.",
                )
            if part is None:
                return s3_error(
                    400, "InvalidArgument", "POST requires exactly one file upload per request."
                )
            if not isinstance(part, BodyPartReader):
                return s3_error(400, "MalformedPOSTRequest", "Nested multipart is not accepted.")
            if part.name == "file":
                break
            try:
                value = await _field(part)
            except (ValueError, HttpProcessingError):
                value = None
            if value is None or part.name is None:
                return s3_error(400, "MalformedPOSTRequest", "A form field is too large.")
            fields[part.name] = value
        target = self._policy(fields)
        if target is None or not is_file_id(target[1]):
            return s3_error(
                403,
                "AccessDenied",
                "Invalid according to Policy: Policy "
                "Condition failed or the upload URL has expired.",
            )
        channel, file_id, name = target
        try:
            await self.files.save(channel, file_id, name, fields.get("Content-Type"), _chunks(part))
        except FileTooLarge:
            await _drain(request)
            return s3_error(
                400,
                "EntityTooLarge",
                "Your proposed upload exceeds the maximum allowed size",
                ProposedSize=request.content_length or MAX_FILE_BYTES + 1,
                MaxSizeAllowed=MAX_FILE_BYTES,
            )
        return web.Response(status=204)

    # --- list, download, delete ---------------------------------------------------------------

    async def list_files(self, request: web.Request) -> web.Response:
        refused = self._refused(request)
        if refused:
            return refused
        limit = request.query.get("limit", "")
        found, after = await self.files.list_files(
            request.match_info["channel"],
            int(limit[:6]) if limit.isascii() and limit.isdigit() else 100,
            request.query.get("next") or None,
        )
        return wire_json(
            {
                "status": 200,
                "data": [shared.to_json() for shared in found],
                "next": after,
                "count": len(found),
            }
        )

    async def download(self, request: web.Request) -> web.Response:
        """PubNub redirects (307) to where the bytes are; the SDKs follow it, and the
        Python SDK's get_file_url reads the Location."""
        refused = self._refused(request)
        if refused:
            return refused
        info = request.match_info
        shared = await self.files.get(info["channel"], info["id"], info["name"])
        if shared is None:
            return pubnub_error(404, "The file does not exist (or was deleted).", SERVICE)
        # As S3's pre-signed links: signed by this server and for an hour, so the bytes are
        # reached only through a request Access Manager let through, not by a file's id
        # and name alone (they are in every file message, history and listFiles).
        signed_at = time.strftime(_AMZ_DATE, time.gmtime())
        signature = self._sign(f"{shared.id}/{shared.name}/{signed_at}/{DOWNLOAD_SECONDS}")
        location = (
            f"{_origin(request)}{DOWNLOAD}/{shared.id}/{quote(shared.name, safe='')}"
            f"?X-Amz-Date={signed_at}&X-Amz-Expires={DOWNLOAD_SECONDS}"
            f"&X-Amz-Signature={signature}"
        )
        return web.Response(status=307, headers={"Location": location})

    def _download_refused(self, request: web.Request, file_id: str, name: str) -> str | None:
        """Why a download link is not one this server signed in the last hour (S3's words)."""
        query = request.query
        signed_at, expires = query.get("X-Amz-Date", ""), query.get("X-Amz-Expires", "")
        given = query.get("X-Amz-Signature", "")
        if not (signed_at and expires and given):
            return "Query-string authentication requires the Signature, Date and Expires parameters"
        expected = self._sign(f"{file_id}/{name}/{signed_at}/{expires}")
        if not hmac.compare_digest(expected, given):
            return "The request signature we calculated does not match the signature you provided."
        moment = datetime.strptime(signed_at, _AMZ_DATE).replace(tzinfo=UTC)  # it was signed
        if time.time() > moment.timestamp() + int(expires):
            return "Request has expired"
        return None

    async def serve_bytes(self, request: web.Request) -> web.StreamResponse:
        info = request.match_info
        refused = self._download_refused(request, info["id"], info["name"])
        if refused is not None:
            return s3_error(403, "AccessDenied", refused)
        shared = await self.files.get(None, info["id"], info["name"])
        if shared is None:
            return s3_error(404, "NoSuchKey", "The specified key does not exist.")
        return web.FileResponse(
            self.files.path_of(shared.id), headers={"Content-Type": shared.content_type}
        )

    async def delete(self, request: web.Request) -> web.Response:
        """PubNub answers 200 whether or not the file was there."""
        refused = self._refused(request)
        if refused:
            return refused
        info = request.match_info
        await self.files.delete_file(info["channel"], info["id"], info["name"])
        return wire_json({"status": 200})

    # --- the file message -------------------------------------------------------------------

    async def publish_file(self, request: web.Request) -> web.Response:
        keyset = self.state.engine.runtime.keyset
        if request.match_info["sub"] != keyset.subscribe_key:
            return pubnub_error(400, "Invalid Subscribe Key", SERVICE)
        if request.match_info["pub"] != keyset.publish_key:
            return publish_error(400, "Invalid Key", self.state.timetoken())
        channel = request.match_info["channel"]
        escaped = request.raw_path.split("?", 1)[0].rsplit("/", 1)[-1]
        if len(escaped) + len(channel) > MAX_PUBLISH_URL_BYTES:
            return publish_error(413, "Message Too Large", self.state.timetoken())
        try:
            payload = jsonio.loads(request.match_info["message"])
            meta = jsonio.loads(request.query["meta"]) if "meta" in request.query else None
        except ValueError:
            return publish_error(400, "Invalid JSON", self.state.timetoken())
        if name_problem(channel):
            return publish_error(400, "Invalid Channel", self.state.timetoken())
        if custom_type_problem(request.query.get("custom_message_type")):
            return publish_error(400, "Invalid Custom Message Type", self.state.timetoken())
        report = await self.files.publish(
            channel,
            payload,
            meta=meta if isinstance(meta, dict) else None,
            params={k: v for k, v in request.query.items() if k in PUBLISH_PARAMS},
            after_waits=False,  # PubNub answers once the message is published
            client=client_meta(request),
        )
        return publish_answer(self.state, report)


async def _field(part: BodyPartReader) -> str | None:
    """A form field's text, or None when it is larger than any field the form has."""
    data = b""
    while chunk := await part.read_chunk(CHUNK):
        data += chunk
        if len(data) > MAX_FIELD_BYTES:
            return None
    return data.decode("utf-8", "replace")


async def _chunks(part: BodyPartReader) -> AsyncIterator[bytes]:
    while chunk := await part.read_chunk(CHUNK):
        yield chunk


async def _drain(request: web.Request) -> None:
    """Read (and drop) what is left of a refused upload, so that the client, still
    sending, reads the answer instead of a reset connection."""
    read = 0
    while read < MAX_DRAIN_BYTES and (chunk := await request.content.read(CHUNK)):
        read += len(chunk)


def _content_type(name: str) -> str:
    """The type PubNub's upload form gives a file, from its name: a text type says its
    charset, as PubNub's recorded forms do ("text/plain; charset=utf-8" for a .txt), so
    a browser opening a file's URL reads UTF-8 text as such."""
    kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return f"{kind}; charset=utf-8" if kind.startswith("text/") else kind
