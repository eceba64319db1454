"""DEBUG=true as a developer runs it: `python -m quartproxy` (and `... demo`) on a COPY of the
package, edited while it serves. The supervisor watches the files (quartproxy/reload.py) and
replaces its worker; a broken edit is logged and waited out. Also: one access line per request.

Every wait is on the server's log or a bounded poll over HTTP, never a sleep as
synchronisation (the polls pause briefly between tries)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import trio

from tests.ops_support import ROOT, ServerProcess, server_env, server_process
from tests.support import FakeN8n, free_port

ROUTE = 'jsonify({"service": "quartproxy", "health": "/health"})'


def copy_tree(dest: Path) -> Path:
    for name in ("quartproxy", "static"):
        shutil.copytree(ROOT / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "hypercorn.toml", dest / "hypercorn.toml")
    return dest


def debug_env(n8n_url: str, tree: Path) -> dict[str, str]:
    return server_env(n8n_url, DEBUG="true", PYTHONPATH=str(tree))


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def event(name: str) -> Callable[[dict[str, Any]], bool]:
    return lambda line: line.get("event") == name


async def poll(check: Callable[[], Any], bound: float = 20.0) -> Any:
    """`check()` until it returns something true, within `bound` seconds."""
    with trio.fail_after(bound):
        while True:
            try:
                result = await check()
            except httpx.HTTPError:
                result = None
            if result:
                return result
            await trio.sleep(0.1)


async def test_an_edit_is_served_after_a_reload_and_a_broken_one_is_waited_out(
    fake_n8n: FakeN8n, tmp_path: Path
) -> None:
    tree = copy_tree(tmp_path)
    ops = tree / "quartproxy" / "http" / "ops.py"
    async with (
        server_process(debug_env(fake_n8n.url, tree), cwd=tree, graceful=5) as server,
        httpx.AsyncClient(base_url=server.url, timeout=10) as client,
    ):

        async def service() -> str:
            r = await client.get("/")
            return str(r.json()["service"])

        assert await poll(service, bound=60) == "quartproxy"
        (watching,) = await server.wait_log(event("reload_watching"))
        assert str(tree) in watching["msg"]  # the copy is what runs and what is watched

        edit(ops, ROUTE, ROUTE.replace('"quartproxy"', '"edited"'))
        with trio.fail_after(20):
            (reload,) = await server.wait_log(event("reload"))
        assert reload["changed"] == ["quartproxy/http/ops.py"]

        async def edited() -> bool:
            return await service() == "edited"

        await poll(edited)

        # A broken import: the worker cannot start; the error is logged, the server waits.
        ops.write_text(ops.read_text() + "\ndef broken(:\n")
        with trio.fail_after(30):
            (died,) = await server.wait_log(event("worker_died"))
        assert died["ready"] is False
        assert any("SyntaxError" in line.get("msg", "") for line in server.lines)
        assert server.proc.returncode is None
        assert not [line for line in server.lines if line.get("event") == "workers_failing"]

        # Fixed: served again, with the change.
        ops.write_text(ops.read_text().replace("\ndef broken(:\n", "\n"))
        await poll(edited, bound=30)
        # One reload line per change; the watcher did not exit on the broken edit.
        assert len([line for line in server.lines if line.get("event") == "reload"]) == 3
        assert server.proc.returncode is None


async def test_a_broken_setting_in_dotenv_is_logged_and_waited_out(
    fake_n8n: FakeN8n, tmp_path: Path
) -> None:
    tree = copy_tree(tmp_path)
    env = debug_env(fake_n8n.url, tree)
    del env["ALLOWED_ORIGINS"]  # from .env instead, where the edit happens
    dotenv = tree / ".env"
    dotenv.write_text("ALLOWED_ORIGINS=http://localhost:3000\n")
    async with (
        server_process(env, cwd=tree, graceful=5) as server,
        httpx.AsyncClient(base_url=server.url, timeout=10) as client,
    ):

        async def up() -> bool:
            return (await client.get("/")).status_code == 200

        await poll(up, bound=60)
        dotenv.write_text("ALLOWED_ORIGINS=not an origin\n")
        with trio.fail_after(30):
            await server.wait_log(event("reload"))
            (died,) = await server.wait_log(event("worker_died"))
        assert died["exitcode"] == 2  # the settings error's own exit code
        assert any("ALLOWED_ORIGINS" in line.get("msg", "") for line in server.lines)
        assert server.proc.returncode is None
        dotenv.write_text("ALLOWED_ORIGINS=http://localhost:3001\n")

        async def new_origin_allowed() -> bool:
            r = await client.options(
                "/api/v1/chat/message",
                headers={
                    "Origin": "http://localhost:3001",
                    "Access-Control-Request-Method": "POST",
                },
            )
            return r.status_code == 204

        await poll(new_origin_allowed, bound=30)


@asynccontextmanager
async def demo_process(tree: Path, port: int) -> AsyncIterator[ServerProcess]:
    env = server_env("http://unused.invalid/", DEBUG="true", PYTHONPATH=str(tree))
    proc = await trio.lowlevel.open_process(
        [sys.executable, "-m", "quartproxy", "demo", "--bind", f"127.0.0.1:{port}"],
        env=env,
        cwd=str(tree),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    server = ServerProcess(proc, f"http://127.0.0.1:{port}")
    assert proc.stdout is not None
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server._read, proc.stdout)
        try:
            yield server
        finally:
            proc.terminate()
            with trio.CancelScope(shield=True), trio.move_on_after(30):
                await proc.wait()
            if proc.returncode is None:
                proc.kill()
                with trio.CancelScope(shield=True):
                    await proc.wait()


async def test_the_demo_reloads_too(tmp_path: Path) -> None:
    tree = copy_tree(tmp_path)
    async with (
        demo_process(tree, free_port()) as server,
        httpx.AsyncClient(base_url=server.url, timeout=10) as client,
    ):

        async def detail() -> str:
            r = await client.get("/health")
            return str(r.json()["checks"]["n8n"]["detail"]) if r.status_code == 200 else ""

        assert await poll(detail, bound=60) == "demo echo upstream"
        edit(tree / "quartproxy" / "http" / "ops.py", '"demo echo upstream"', '"edited echo"')

        async def changed() -> bool:
            return await detail() == "edited echo"

        await poll(changed)
        # the demo logs text lines: one reload line, naming the file
        reloads = [line["msg"] for line in server.lines if "reload: " in line.get("msg", "")]
        assert len(reloads) == 1
        assert "reload: quartproxy/http/ops.py changed; restarting 1 worker(s)" in reloads[0]
    assert server.proc.returncode == 0


async def test_each_request_is_logged_once(fake_n8n: FakeN8n) -> None:
    """Clients that read a whole response and close at once (curl, `Connection: close`) used to
    get two access lines, the first with no status: the close raced the app's final message."""
    env = server_env(fake_n8n.url, DEBUG="true")
    async with server_process(env, graceful=5) as server:
        host, port = server.url.removeprefix("http://").split(":")
        tries = 40

        async def one(i: int) -> None:
            stream = await trio.open_tcp_stream(host, int(port))
            request = f"GET /missing/{i} HTTP/1.1\r\nHost: x\r\nUser-Agent: t\r\n\r\n"
            await stream.send_all(request.encode())
            seen = b""
            while b"\r\n\r\n" not in seen or len(seen.partition(b"\r\n\r\n")[2]) < length(seen):
                chunk = await stream.receive_some()
                assert chunk, seen
                seen += chunk
            await stream.aclose()  # at once, like curl: the race the access log lost

        with trio.fail_after(60):
            for i in range(tries):
                await one(i)
            await server.wait_log(lambda line: line.get("path") == f"/missing/{tries - 1}")
        access = [line for line in server.lines if line.get("msg") == "access"]
        paths = [line["path"] for line in access if line["path"].startswith("/missing/")]
        assert sorted(paths) == sorted(f"/missing/{i}" for i in range(tries))
        assert all(line.get("status") == 404 for line in access), access


def length(raw: bytes) -> int:
    head = raw.partition(b"\r\n\r\n")[0].decode("latin1").lower()
    for line in head.split("\r\n"):
        if line.startswith("content-length:"):
            return int(line.partition(":")[2])
    raise AssertionError(head)
