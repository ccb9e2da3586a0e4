"""File Sharing with the official PubNub SDKs (JavaScript in Node, Python) against a real
`pfunc dev`: sendFile's three requests, the file event subscribers receive, download,
list, delete, publishFile, the 5 MB limit, history, and the project's file functions."""

from __future__ import annotations

import base64
import json
import os
import re
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator

import pytest

from tests.conftest import serve_project
from tests.dev_harness import InProcessDev
from tests.sdk.jsdk import SdkError
from tests.sdk.pysdk import py_client
from tests.test_sdk_js import kv_get

KEYS = ("pub-c-files", "sub-c-files")
PROJECT = """
[project]
subscribe_key = "sub-c-files"
publish_key = "pub-c-files"

[[functions]]
name = "vet"
file = "vet.js"
event = "before-publish-file"
channels = ["docs.*"]

[[functions]]
name = "audit"
file = "audit.js"
event = "after-publish-file"
channels = ["docs.*"]
"""
HANDLERS = {
    "vet.js": """
        export default (request) => {
          if (request.message.message === "secret") return request.abort("no secrets");
          if (typeof request.message.message === "string") {
            request.message.message += " [vetted]";
          }
          return request.ok();
        };
    """,
    "audit.js": """
        const db = require("kvstore");
        export default async (request) => {
          await db.set("audit:" + request.message.file.name, request.message.message);
          return request.ok();
        };
    """,
}
BYTES = bytes(range(256)) * 3 + "é ☃\n".encode()  # not UTF-8 text as a whole


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessDev]:
    yield from serve_project(tmp_path_factory, "files", PROJECT, HANDLERS)


def send(client, channel: str, data: bytes, name: str, **args):
    return client.sdk.command(
        "sendFile",
        client=client.name,
        base64=base64.b64encode(data).decode(),
        name=name,
        mimeType="application/x-test",
        args={"channel": channel, **args},
    )


def download(client, channel: str, file_id: str, name: str) -> tuple[bytes, str]:
    got = client.sdk.command(
        "downloadFile",
        client=client.name,
        args={"channel": channel, "id": file_id, "name": name},
    )
    return base64.b64decode(got["base64"]), got["mimeType"]


def fetch(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # follows the 307
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_send_file_reaches_subscribers_history_and_downloads_the_same_bytes(clients, dev):
    reader, writer = clients("reader"), clients("writer")
    reader.subscribe("docs.a")
    reader.connected()
    sent = send(writer, "docs.a", BYTES, "report.bin", message="quarterly")
    assert sent["name"] == "report.bin" and len(str(sent["timetoken"])) == 17

    event = reader.wait_for("file")
    assert event["message"] == "quarterly [vetted]"  # the before-publish-file function's text
    assert event["publisher"] == "writer"
    assert event["file"]["id"] == sent["id"] and event["file"]["name"] == "report.bin"
    assert reader.events("message") == []
    assert fetch(event["file"]["url"]) == (200, BYTES)  # the URL the SDK built works

    data, mime = download(reader, "docs.a", sent["id"], "report.bin")
    # The stored type is the form's Content-Type field, which PubNub derives from the name.
    assert data == BYTES and mime == "application/octet-stream"

    history = reader.call("fetchMessages", channels=["docs.a"])["channels"]["docs.a"]
    assert history[-1]["messageType"] == 4
    assert history[-1]["message"]["message"] == "quarterly [vetted]"
    assert history[-1]["message"]["file"]["id"] == sent["id"]
    # The after-publish-file function saw the delivered message.
    deadline = time.monotonic() + 10
    while kv_get(dev, "audit:report.bin") is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert kv_get(dev, "audit:report.bin") == "quarterly [vetted]"


def test_an_encrypted_file_message_passes_the_file_functions_as_its_ciphertext(clients):
    """The SDK encrypts the whole file message ({message, file}) into one text, which
    PubNub publishes as it is (its functions see the ciphertext). Where a file function
    was bound pfunc made that text the message of a made-up file: subscribers were sent
    a file that did not exist, and history a value the SDKs could not decrypt."""
    reader = clients("reader", cipherKey="enigma")
    writer = clients("writer", cipherKey="enigma")
    reader.subscribe("docs.enc")
    reader.connected()
    sent = send(writer, "docs.enc", b"top secret", "secret.txt", message={"note": "hi"})

    event = reader.wait_for("file")
    assert event["file"]["id"] == sent["id"] and event["file"]["name"] == "secret.txt"
    assert event["message"] == {"note": "hi"}
    assert download(reader, "docs.enc", sent["id"], "secret.txt")[0] == b"top secret"
    history = reader.call("fetchMessages", channels=["docs.enc"])["channels"]["docs.enc"]
    assert history[-1]["message"]["file"]["id"] == sent["id"]
    assert history[-1]["message"]["message"] == {"note": "hi"}


def test_a_text_file_is_typed_with_its_charset_as_pubnub_types_it(clients):
    """PubNub's upload form gives a .txt file "text/plain; charset=utf-8" (every recorded
    generate-upload-url): downloads and the file's URL say so, and a browser reads the
    UTF-8 text as such. pfunc gave "text/plain" alone."""
    writer = clients("writer")
    text = "Grüße, ☃".encode()
    sent = send(writer, "docs.text", text, "notes.txt")
    assert download(writer, "docs.text", sent["id"], "notes.txt") == (
        text,
        "text/plain; charset=utf-8",
    )
    url = writer.call("getFileUrl", channel="docs.text", id=sent["id"], name="notes.txt")
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
        assert response.read() == text


def test_list_get_url_publish_file_and_delete(clients):
    writer = clients("writer")
    ids = [send(writer, "docs.list", f"file {n}".encode(), f"f{n}.txt")["id"] for n in range(3)]
    listed = writer.call("listFiles", channel="docs.list")
    assert sorted(f["id"] for f in listed["data"]) == sorted(ids)
    assert {f["name"]: f["size"] for f in listed["data"]} == {f"f{n}.txt": 6 for n in range(3)}
    first = writer.call("listFiles", channel="docs.list", limit=2)
    assert len(first["data"]) == 2 and first["next"]
    rest = writer.call("listFiles", channel="docs.list", limit=2, next=first["next"])
    assert [f["id"] for f in first["data"] + rest["data"]] == sorted(ids)
    assert not rest.get("next")

    url = writer.call("getFileUrl", channel="docs.list", id=ids[0], name="f0.txt")
    assert fetch(url) == (200, b"file 0")
    again = writer.call(
        "publishFile", channel="docs.list", fileId=ids[0], fileName="f0.txt", message="again"
    )
    assert len(str(again["timetoken"])) == 17

    assert writer.call("deleteFile", channel="docs.list", id=ids[0], name="f0.txt")["status"] == 200
    with pytest.raises(SdkError) as gone:
        download(writer, "docs.list", ids[0], "f0.txt")
    assert gone.value.status.get("statusCode") == 404
    assert fetch(url)[0] == 404
    assert len(writer.call("listFiles", channel="docs.list")["data"]) == 2


def test_a_file_over_5_mb_is_refused_as_s3_refuses_it_and_nothing_is_kept(clients):
    writer = clients("writer")
    with pytest.raises(SdkError) as refused:
        send(writer, "docs.big", b"x" * (5 * 1024 * 1024 + 1), "big.bin")
    assert refused.value.status["statusCode"] == 400
    assert refused.value.status["operation"] == "PNPublishFileOperation"  # the upload step
    assert writer.call("listFiles", channel="docs.big")["data"] == []


def test_an_aborted_file_message_reaches_no_one_and_the_sender_is_told(clients):
    reader, writer = clients("reader"), clients("writer")
    reader.subscribe("docs.quiet")
    reader.connected()
    with pytest.raises(SdkError) as refused:
        send(writer, "docs.quiet", b"classified", "plans.txt", message="secret")
    # The upload stayed; the SDK names the file whose message could not be published.
    assert refused.value.status["statusCode"] == 400
    assert refused.value.status["name"] == "plans.txt" and refused.value.status["id"]
    send(writer, "docs.quiet", b"public", "notes.txt", message="fine")
    assert reader.wait_for("file")["message"] == "fine [vetted]"
    assert [e["file"]["name"] for e in reader.events("file")] == ["notes.txt"]


def test_python_sdk_send_download_list_and_url(dev):
    # No subscriber here: the Python SDK 10.8 itself fails on a file event when listeners
    # sit in its subscription registry (PubNubSubscription has no file_message).
    writer = py_client(dev.port, KEYS, "py-writer")
    try:
        sent = (
            writer.send_file()
            .channel("docs.py")
            .file_name("hello.txt")
            .message({"text": "from python"})
            .should_store(True)  # the Python SDK's default is store=0
            .file_object(b"hello from python")
            .sync()
        )
        got = (
            writer.download_file()
            .channel("docs.py")
            .file_id(sent.result.file_id)
            .file_name("hello.txt")
            .sync()
        )
        assert got.result.data == b"hello from python"
        listed = writer.list_files().channel("docs.py").sync()
        assert [f["name"] for f in listed.result.data] == ["hello.txt"]
        assert listed.result.count == 1
        url = (
            writer.get_file_url()
            .channel("docs.py")
            .file_id(sent.result.file_id)
            .file_name("hello.txt")
            .sync()
        )
        assert fetch(url.result.file_url) == (200, b"hello from python")
        history = writer.fetch_messages().channels("docs.py").include_message_type(True).sync()
        stored = history.result.channels["docs.py"][-1]
        assert stored.message_type == 4
        assert stored.message["message"] == {"text": "from python"}  # not text: not vetted
    finally:
        writer.stop()


def test_the_bytes_are_reached_only_by_a_link_the_server_signed(dev):
    """A download redirects to a link signed for an hour, as S3's pre-signed ones: a
    file's id and name alone (in every file message) do not reach its bytes."""
    status, _, text = dev.request(
        "POST",
        "/v1/files/sub-c-files/channels/docs.sig/generate-upload-url",
        json.dumps({"name": "s.txt"}).encode(),
    )
    upload = json.loads(text)
    form = {f["key"]: f["value"] for f in upload["file_upload_request"]["form_fields"]}
    file_id = upload["data"]["id"]
    boundary = "pfuncboundary"
    body = "".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
        for k, v in form.items()
    )
    body += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="s.txt"\r\n'
        f"Content-Type: text/plain\r\n\r\nsecret bytes\r\n--{boundary}--\r\n"
    )
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    assert dev.request("POST", "/pfunc/files/upload", body.encode(), headers)[0] == 204
    request = urllib.request.Request(
        f"{dev.base}/v1/files/sub-c-files/channels/docs.sig/files/{file_id}/s.txt"
    )

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    try:
        urllib.request.build_opener(NoRedirect).open(request)
    except urllib.error.HTTPError as redirect:
        location = redirect.headers["Location"]
    path = location.split(str(dev.port), 1)[1]
    assert dev.request("GET", path)[:3:2] == (200, "secret bytes")
    bare = path.split("?", 1)[0]
    status, _, text = dev.request("GET", bare)
    assert status == 403 and "<Code>AccessDenied</Code>" in text
    forged = path.replace("X-Amz-Expires=3600", "X-Amz-Expires=99999999")
    assert dev.request("GET", forged)[0] == 403
    old = re.sub(r"X-Amz-Date=\d{8}T\d{6}Z", "X-Amz-Date=20200101T000000Z", path)
    assert dev.request("GET", old)[0] == 403  # the date is signed too
    # A link this server signed over an hour ago has expired.
    stale = dev.server.files._sign(f"{file_id}/s.txt/20200101T000000Z/3600")
    old = re.sub(r"X-Amz-Signature=\w+", f"X-Amz-Signature={stale}", old)
    status, _, text = dev.request("GET", old)
    assert status == 403 and "Request has expired" in text


def test_uploads_need_the_policy_the_server_signed(dev):
    boundary = uuid.uuid4().hex
    fields = {"key": "x", "Policy": base64.b64encode(b"{}").decode(), "X-Amz-Signature": "00"}
    body = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    )
    body += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="../../x"\r\n'
        f"\r\nforged\r\n--{boundary}--\r\n"
    ).encode()
    status, headers, text = dev.request(
        "POST",
        "/pfunc/files/upload",
        body,
        {"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert status == 403 and "<Code>AccessDenied</Code>" in text
    # With a signed policy, a file past 5 MB gets S3's EntityTooLarge, and is not kept.
    status, _, text = dev.request(
        "POST",
        "/v1/files/sub-c-files/channels/docs.up/generate-upload-url",
        json.dumps({"name": "big.bin"}).encode(),
    )
    form = json.loads(text)["file_upload_request"]
    body = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{f["key"]}"\r\n\r\n'
        f"{f['value']}\r\n".encode()
        for f in form["form_fields"]
    )
    body += (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.bin"'
            "\r\n\r\n"
        ).encode()
        + b"x" * (5 * 1024 * 1024 + 1)
        + f"\r\n--{boundary}--\r\n".encode()
    )
    status, headers, text = dev.request(
        "POST",
        form["url"].removeprefix(dev.base),
        body,
        {"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert status == 400 and "<Code>EntityTooLarge</Code>" in text
    assert "xml" in headers["Content-Type"]
    assert (
        json.loads(dev.request("GET", "/v1/files/sub-c-files/channels/docs.up/files")[2])["data"]
        == []
    )
    status, _, text = dev.request("POST", "/pfunc/files/upload", b"not a form")
    assert status == 400 and "<Error>" in text
    assert not any(p.name == "x" for p in dev.folder.rglob("x"))


def test_hostile_names_are_refused_and_unknown_files_are_404(dev):
    base = "/v1/files/sub-c-files/channels"
    for name in ("../../etc/passwd", "a/b", "..", "", "x" * 300, "tab\there"):
        status, _, text = dev.request(
            "POST", f"{base}/docs.h/generate-upload-url", json.dumps({"name": name}).encode()
        )
        assert status == 400, (name, text)
    status, _, _ = dev.request("POST", f"{base}/docs.h/generate-upload-url", b"[1]")
    assert status == 400
    missing = f"{base}/docs.h/files/{uuid.uuid4()}/x.txt"
    assert dev.request("GET", missing)[0] == 404
    assert dev.request("GET", f"/pfunc/files/download/{'..%2F' * 3}kv.sqlite3/x")[0] == 403
    assert dev.request("DELETE", missing)[0] == 200  # as PubNub: deleting nothing is fine
    assert dev.request("GET", f"{base}/docs.h/files?limit=abc")[0] == 200
    assert os.path.exists(dev.folder / ".pfunc" / "kv.sqlite3")


def test_a_cut_or_overlong_form_is_refused_not_a_fault(dev):
    """A body cut short, or more form fields than any SDK sends, is S3's 400, not a 500."""
    boundary = uuid.uuid4().hex
    cut = f'--{boundary}\r\nContent-Disposition: form-data; name="key"\r\n\r\nabc'.encode()
    many = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="f{n}"\r\n\r\nv\r\n'.encode()
        for n in range(100)
    )
    for body in (cut, many):
        status, _, text = dev.request(
            "POST",
            "/pfunc/files/upload",
            body,
            {"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        assert status == 400 and "<Code>MalformedPOSTRequest</Code>" in text, text
