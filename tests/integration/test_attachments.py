"""File attachments through a real Hypercorn: multipart on the SSE, NDJSON and @n8n/chat
paths, forwarded to a fake n8n that decodes the parts with the standard library; every
refusal's status, code and reason; nothing kept open; memory flat for a large upload."""

from __future__ import annotations

import gc
import hashlib
import json
import os
import tracemalloc
import warnings
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import trio

from tests import raw_http
from tests.asgi import read_request
from tests.support import ORIGIN, SESSION_SECRET, FakeN8n, Proxy, parse_sse, served

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4
PDF = b"%PDF-1.7\n" + b"\r\n--boundary-like\r\n" * 50 + b"%%EOF\n"
ON = {"ATTACH_ENABLED": "true"}
MakeProxy = Callable[..., AbstractAsyncContextManager[Proxy]]
Files = list[tuple[str, tuple[str, bytes, str]]]


def two_files() -> Files:
    return [
        ("files", ("cat.png", PNG, "image/png")),
        ("files", ("doc.pdf", PDF, "application/pdf")),
    ]


async def send(
    proxy: Proxy, files: Files, *, path: str = "/api/v1/chat/message", message: str = "look"
) -> httpx.Response:
    session = await proxy.session()
    data = {"message": message, "metadata": json.dumps({"page": "/shop"})}
    return await proxy.client.post(path, data=data, files=files, headers=proxy.auth(session))


def refusal(r: httpx.Response) -> tuple[int, str, str | None]:
    error = r.json()["error"]
    return r.status_code, error["code"], error.get("reason")


def spooled_on_disk() -> int:
    """Temporary files this process holds open (a spool that rolled over to disk)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        count += target.startswith(("/tmp/", "/var/tmp/")) and target.endswith("(deleted)")
    return count


async def test_files_reach_n8n_as_the_chat_trigger_expects(
    make_proxy: MakeProxy, fake_n8n: FakeN8n
) -> None:
    async with make_proxy(**ON) as proxy:
        r = await send(proxy, two_files())
        assert r.status_code == 200, r.text
        events = parse_sse(r.text)
        assert events[-1].event == "end" and events[-1].data["text"] == "echo: look"
    sent = fake_n8n.requests[-1]
    assert sent["headers"]["content-type"].startswith("multipart/form-data; boundary=")
    assert int(sent["headers"]["content-length"]) > len(PNG) + len(PDF)
    body = sent["body"]
    assert body["action"] == "sendMessage" and body["chatInput"] == "look"
    assert json.loads(body["metadata"]) == {"page": "/shop"}
    assert body["sessionId"] == sent["claims"]["sid"]
    assert body["files"] == [
        {"name": "cat.png", "type": "image/png", "data": PNG},
        {"name": "doc.pdf", "type": "application/pdf", "data": PDF},
    ]
    # the JWT n8n checks names each file by its hash, in order
    assert sent["claims"]["files"] == [
        hashlib.sha256(PNG).hexdigest(),
        hashlib.sha256(PDF).hexdigest(),
    ]


async def test_history_shows_what_was_attached_never_the_bytes(
    make_proxy: MakeProxy, tmp_path: Path
) -> None:
    env = {**ON, "DEPLOYMENT_MODE": "sqlite", "SQLITE_PATH": str(tmp_path / "h.db")}
    async with make_proxy(**env) as proxy:
        session = await proxy.session()
        auth = proxy.auth(session)
        r = await proxy.client.post(
            "/api/v1/chat/message", data={"message": "look"}, files=two_files(), headers=auth
        )
        assert r.status_code == 200
        r = await proxy.client.get(f"/api/v1/chat/history/{session['session_id']}", headers=auth)
        question, answer = r.json()["messages"]
        assert question["files"] == [
            {"name": "cat.png", "type": "image/png", "size": len(PNG)},
            {"name": "doc.pdf", "type": "application/pdf", "size": len(PDF)},
        ]
        assert "files" not in answer
    assert PNG[16:80] not in (tmp_path / "h.db").read_bytes()


async def test_file_names_lose_their_directories(make_proxy: MakeProxy, fake_n8n: FakeN8n) -> None:
    async with make_proxy(**ON) as proxy:
        long = "x" * 300 + ".png"
        files = one("../../etc/cat.png", PNG, "image/png") + one(long, PNG, "image/png")
        r = await send(proxy, files)
        assert r.status_code == 200, r.text
    names = [f["name"] for f in fake_n8n.requests[-1]["body"]["files"]]
    assert names == ["cat.png", long[:255]]


async def test_a_message_without_files_has_no_files_claim(proxy: Proxy, fake_n8n: FakeN8n) -> None:
    session = await proxy.session()
    r = await proxy.client.post(
        "/api/v1/chat/message", json={"message": "hi"}, headers=proxy.auth(session)
    )
    assert r.status_code == 200
    assert "files" not in fake_n8n.requests[-1]["claims"]
    assert fake_n8n.requests[-1]["headers"]["content-type"] == "application/json"


async def test_ndjson_path_takes_files_too(make_proxy: MakeProxy, fake_n8n: FakeN8n) -> None:
    async with make_proxy(**ON) as proxy:
        r = await send(proxy, two_files()[:1], path="/api/v1/chat/stream")
        assert r.status_code == 200, r.text
        assert json.loads(r.text.strip().splitlines()[-1])["type"] == "end"
    assert [f["name"] for f in fake_n8n.requests[-1]["body"]["files"]] == ["cat.png"]


async def test_the_official_widget_sends_files_as_multipart(
    make_proxy: MakeProxy, fake_n8n: FakeN8n
) -> None:
    """@n8n/chat's multipart: action, sessionId, chatInput, metadata (JSON) and `files`."""
    async with make_proxy(**ON) as proxy:
        data = {"action": "sendMessage", "sessionId": "w-1", "chatInput": "see", "metadata": "{}"}
        r = await proxy.client.post(
            "/api/v1/n8n/chat", data=data, files=two_files(), headers={"Origin": ORIGIN}
        )
        assert r.status_code == 200, r.text
        assert r.json() == {"output": "echo: see"}
    sent = fake_n8n.requests[-1]["body"]
    assert [f["data"] for f in sent["files"]] == [PNG, PDF]
    assert sent["sessionId"] != "w-1"  # the derived key, as for JSON messages


@pytest.mark.parametrize("path", ["/api/v1/chat/message", "/api/v1/chat/stream"])
async def test_attachments_are_off_by_default(proxy: Proxy, fake_n8n: FakeN8n, path: str) -> None:
    r = await send(proxy, two_files(), path=path)
    assert refusal(r)[:2] == (415, "unsupported_media_type")
    r = await proxy.client.post(
        "/api/v1/n8n/chat",
        data={"action": "sendMessage", "sessionId": "s", "chatInput": "x"},
        files=two_files(),
        headers={"Origin": ORIGIN},
    )
    assert refusal(r)[:2] == (415, "unsupported_media_type")
    assert fake_n8n.requests == []


LIMITS = {
    **ON,
    "ATTACH_MAX_FILES": "2",
    "ATTACH_MAX_BYTES": "2000",
    "ATTACH_MAX_TOTAL_BYTES": "3000",
}


def one(name: str, data: bytes, ctype: str) -> Files:
    return [("files", (name, data, ctype))]


BIG, MEDIA = "payload_too_large", "unsupported_media_type"


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        (one("a.png", PNG + b"x" * 1000, "image/png"), (413, BIG, "file_too_large")),
        (one("a.png", PNG, "image/png") * 3, (413, BIG, "too_many_files")),
        (one("a.png", PNG + b"x" * 600, "image/png") * 2, (413, BIG, "total_too_large")),
        (one("a.svg", b"<svg/>", "image/svg+xml"), (415, MEDIA, "type_not_allowed")),
        (one("a.png", PDF, "image/png"), (415, MEDIA, "type_mismatch")),
        (one("a.png", b"MZ\x90\x00" + PNG, "image/png"), (415, MEDIA, "type_mismatch")),
    ],
)
async def test_each_limit_refuses_with_its_reason(
    make_proxy: MakeProxy, fake_n8n: FakeN8n, files: Files, expected: tuple[int, str, str]
) -> None:
    async with make_proxy(**LIMITS) as proxy:
        r = await send(proxy, files)
        assert refusal(r) == expected
        assert r.json()["error"]["message"]
        # the same refusal on the official widget's path, with its top-level sentence
        data = {"action": "sendMessage", "sessionId": "s", "chatInput": "x"}
        r = await proxy.client.post(
            "/api/v1/n8n/chat", data=data, files=files, headers={"Origin": ORIGIN}
        )
        assert refusal(r) == expected and r.json()["message"]
    assert fake_n8n.requests == []


XX = "multipart/form-data; boundary=XX"
DISPOSITION = b"Content-Disposition: form-data; name="


@pytest.mark.parametrize(
    ("ctype", "body"),
    [
        ("multipart/form-data", b"--x\r\n"),  # no boundary
        (XX, b"--XX\r\n" + DISPOSITION + b"message\r\n\r\nhi"),  # no final boundary
        (XX, b"--XX\r\nX-Pad: " + b"a" * 20_000 + b"\r\n\r\n"),  # a header bomb
        (  # metadata that is not JSON
            XX,
            b"--XX\r\n" + DISPOSITION + b"metadata\r\n\r\n{nope\r\n"
            b"--XX\r\n" + DISPOSITION + b"message\r\n\r\nhi\r\n--XX--",
        ),
    ],
)
async def test_a_broken_multipart_body_is_a_bad_request(
    make_proxy: MakeProxy, fake_n8n: FakeN8n, ctype: str, body: bytes
) -> None:
    async with make_proxy(**ON) as proxy:
        session = await proxy.session()
        headers = {**proxy.auth(session), "Content-Type": ctype}
        r = await proxy.client.post("/api/v1/chat/message", content=body, headers=headers)
        assert refusal(r)[:2] == (400, "bad_request")
    assert fake_n8n.requests == []


async def raw_upload(
    proxy: Proxy, length: int, first: bytes, ctype: str = "multipart/form-data; boundary=XX"
) -> int:
    """A multipart head declaring `length` bytes, then only `first` of them: the status of
    the answer, which must come without the rest (httpx reads no answer before its body
    is sent, so this is a raw socket)."""
    session = await proxy.session()
    headers = {
        **proxy.auth(session),
        "Host": "proxy",
        "Content-Type": ctype,
        "Content-Length": str(length),
    }
    head = "POST /api/v1/chat/message HTTP/1.1\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in headers.items()
    )
    stream = await raw_http.connect(proxy.url)
    async with stream:
        await stream.send_all(head.encode() + b"\r\n" + first)
        return raw_http.status_of(await raw_http.read_head(stream, bytearray()))


async def test_a_refusal_early_in_a_large_upload_reaches_a_client_that_sends_it_all(
    make_proxy: MakeProxy,
) -> None:
    """Like a browser, httpx reads the answer only after sending the whole body: the refusal
    comes at the file's first bytes, and the rest is read and dropped so the answer arrives."""
    env = {**ON, "ATTACH_MAX_BYTES": "8000000", "ATTACH_MAX_TOTAL_BYTES": "8000000"}
    async with make_proxy(**env) as proxy:
        fake_png = b"GIF89a" + bytes(6_000_000)
        r = await send(proxy, one("a.png", fake_png, "image/png"))
        assert refusal(r) == (415, MEDIA, "type_mismatch")


async def test_a_declared_length_over_the_ceiling_is_refused_before_reading(
    make_proxy: MakeProxy,
) -> None:
    async with make_proxy(**LIMITS) as proxy:
        assert await raw_upload(proxy, 10**9, b"--XX\r\n") == 413


async def test_a_stalled_upload_is_answered_408(make_proxy: MakeProxy, fake_n8n: FakeN8n) -> None:
    async with make_proxy(**LIMITS) as proxy:
        proxy.app.config["BODY_TIMEOUT"] = 0.3  # read by each new request
        part = b'--XX\r\nContent-Disposition: form-data; name="files"; filename="a.png"\r\n'
        assert await raw_upload(proxy, 2000, part) == 408
    assert fake_n8n.requests == []


async def test_a_json_body_over_its_limit_is_refused_before_reading(make_proxy: MakeProxy) -> None:
    """Only multipart chat messages get the attachments' ceiling: a JSON body declaring more
    than MAX_BODY_BYTES is answered at once, not read into memory first."""
    async with make_proxy(**ON) as proxy:
        assert await raw_upload(proxy, 1_000_000, b'{"message": "', "application/json") == 413


async def test_bytes_after_the_final_boundary_count_toward_the_ceiling(
    make_proxy: MakeProxy, fake_n8n: FakeN8n
) -> None:
    async with make_proxy(**LIMITS) as proxy:
        session = await proxy.session()
        body = b"--XX\r\n" + DISPOSITION + b"message\r\n\r\nhi\r\n--XX--\r\n" + b"e" * 1_000_000
        headers = {**proxy.auth(session), "Content-Type": XX}

        async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: counted while read
            for i in range(0, len(body), 65536):
                yield body[i : i + 65536]

        r = await proxy.client.post("/api/v1/chat/message", content=chunked(), headers=headers)
        assert refusal(r) == (413, "payload_too_large", "body_too_large")
    assert fake_n8n.requests == []


async def test_json_bodies_keep_their_own_limit_when_attachments_are_on(
    make_proxy: MakeProxy,
) -> None:
    async with make_proxy(**ON) as proxy:
        session = await proxy.session()
        big = {"message": "hi", "metadata": {"x": "y" * 100_000}}
        r = await proxy.client.post("/api/v1/chat/message", json=big, headers=proxy.auth(session))
        assert refusal(r)[:2] == (413, "payload_too_large")


async def test_refused_and_sent_files_are_closed(make_proxy: MakeProxy, fake_n8n: FakeN8n) -> None:
    big = PNG + os.urandom(300_000)  # past the 256 KB spool: on disk
    env = {**ON, "ATTACH_MAX_BYTES": "1000000"}
    before = spooled_on_disk()
    # a file left to the garbage collector says so (ResourceWarning): each must be closed
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        await refuse_then_send(make_proxy, env, big, before)
        gc.collect()
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []
    assert fake_n8n.requests[-1]["body"]["files"][0]["data"] == big


async def refuse_then_send(
    make_proxy: MakeProxy, env: dict[str, str], big: bytes, before: int
) -> None:
    async with make_proxy(**env) as proxy:
        # the second file is refused after the first was spooled to disk
        r = await send(
            proxy, [("files", ("a.png", big, "image/png")), ("files", ("b.png", PDF, "image/png"))]
        )
        assert refusal(r)[2] == "type_mismatch"
        assert spooled_on_disk() == before
        r = await send(proxy, [("files", ("a.png", big, "image/png"))])
        assert r.status_code == 200 and parse_sse(r.text)[-1].event == "end"
        with trio.fail_after(10):
            while spooled_on_disk() != before:  # noqa: ASYNC110 (closed as the turn ends)
                await trio.sleep(0.01)


class CountingN8n:
    """A fake n8n that reads a request as it streams (counting and hashing, keeping nothing)."""

    def __init__(self) -> None:
        self.size = 0
        self.claims: dict[str, Any] = {}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await read_request(scope, receive, send)  # the lifespan protocol
            return
        token = dict(scope["headers"])[b"authorization"].decode().partition(" ")[2]
        self.claims = jwt.decode(token, SESSION_SECRET, algorithms=["HS256"])
        more = True
        while more:
            msg = await receive()
            data = msg.get("body", b"")
            self.size += len(data)
            more = msg.get("more_body", False)
        body = json.dumps({"output": "got it"}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})


async def test_a_large_upload_is_streamed_not_held_in_memory(make_proxy: MakeProxy) -> None:
    size = 40 * 1024 * 1024
    counting = CountingN8n()
    async with served(counting) as url:
        env = {**ON, "ATTACH_MAX_BYTES": str(size + 100), "ATTACH_MAX_TOTAL_BYTES": str(size + 100)}
        async with make_proxy(f"{url}/webhook/chat", **env) as proxy:
            session = await proxy.session()
            boundary = "b0undary"
            head = (
                f'--{boundary}\r\nContent-Disposition: form-data; name="message"\r\n\r\nbig\r\n'
                f"--{boundary}\r\nContent-Disposition: form-data; "
                'name="files"; filename="big.pdf"\r\n'
                "Content-Type: application/pdf\r\n\r\n"
            ).encode()
            block = b"%PDF-1.7\n" + bytes(65536 - 9)
            sent = hashlib.sha256()

            async def body() -> AsyncIterator[bytes]:
                yield head
                for i in range(size // 65536):
                    piece = block if i == 0 else block[9:] + block[:9]
                    sent.update(piece)
                    yield piece
                yield f"\r\n--{boundary}--\r\n".encode()

            headers = {
                **proxy.auth(session),
                "Content-Type": f"multipart/form-data; boundary={boundary}",
            }
            tracemalloc.start()
            try:
                r = await proxy.client.post("/api/v1/chat/message", content=body(), headers=headers)
                assert r.status_code == 200, r.text
                assert parse_sse(r.text)[-1].event == "end"
                peak = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
    # client, proxy and fake n8n in this one process: all of them together stay far below
    # the 40 MB that passed through
    assert peak < 8 * 1024 * 1024, peak
    assert counting.size > size
    assert counting.claims["files"] == [sent.hexdigest()]  # hashed as it streamed
