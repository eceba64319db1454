"""Run a real n8n 1.123.x for the e2e suite: install (once, cached), import, activate, start, stop.

The n8n install lives outside the repository, in `${QUARTPROXY_CACHE:-~/.cache/quartproxy}/n8n`,
made by `.ci/setup-n8n.sh`. Each test session gets its own n8n user folder (a fresh SQLite
database) in a temporary directory, imports the credentials and workflows written for these tests
with the n8n CLI while n8n is stopped, then starts n8n on a free loopback port. Only the process
group started here is ever stopped.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = Path(__file__).resolve().parent / "workflows"
SETUP_SCRIPT = REPO / ".ci" / "setup-n8n.sh"

# The proxy's SESSION_SECRET_KEY in these tests; it is also the passphrase of n8n's JWT credential.
SESSION_SECRET = "quartproxy-e2e-session-secret-0123456789abcdef"
JWT_CREDENTIAL_ID = "qpE2eJwtCred0001"
OPENAI_CREDENTIAL_ID = "qpE2eOpenAiCred1"
ENCRYPTION_KEY = "quartproxy-e2e-n8n-encryption-key"

# Webhook paths (JWT Auth on each) and Chat Trigger webhook ids, as written in workflows/*.json.
WEBHOOK_PATHS = {
    "stream": "qp-stream",
    "json": "qp-json",
    "error": "qp-error",
    "slow": "qp-slow",
    "slow-json": "qp-slow-json",
    "agent": "qp-agent",
    "claims": "qp-claims",
    "files": "qp-files",
    "history": "qp-history",
}
CHAT_TRIGGER_IDS = {
    "chat-trigger": "5f0e2b8c-7a41-4c3e-9d6b-2a1c0e9f8b70",
    "chat-stream": "5f0e2b8c-7a41-4c3e-9d6b-2a1c0e9f8b71",
}

START_TIMEOUT = 120.0  # n8n answers /healthz after 10-15 s here; allow for a loaded CI machine


def cache_dir() -> Path:
    root = os.environ.get("QUARTPROXY_CACHE") or str(Path.home() / ".cache" / "quartproxy")
    return Path(root) / "n8n"


def n8n_bin() -> Path:
    return cache_dir() / "node_modules" / ".bin" / "n8n"


def ensure_installed() -> Path:
    """Install n8n into the cache when it is missing (minutes, once); return the n8n binary."""
    binary = n8n_bin()
    if not binary.exists():
        subprocess.run(["bash", str(SETUP_SCRIPT)], check=True)
    if not binary.exists():
        raise RuntimeError(f"{SETUP_SCRIPT} ran but {binary} is missing")
    return binary


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def credentials(openai_base_url: str, secret: str = SESSION_SECRET) -> list[dict[str, Any]]:
    """The credentials the workflows reference, in n8n's import format (plain `data`)."""
    return [
        {
            "id": JWT_CREDENTIAL_ID,
            "name": "quartproxy e2e JWT",
            "type": "jwtAuth",
            "data": {"keyType": "passphrase", "secret": secret, "algorithm": "HS256"},
        },
        {
            "id": OPENAI_CREDENTIAL_ID,
            "name": "quartproxy e2e fake OpenAI",
            "type": "openAiApi",
            "data": {"apiKey": "sk-quartproxy-e2e-fake", "url": openai_base_url, "header": False},
        },
    ]


def workflow_files() -> list[Path]:
    return sorted(WORKFLOWS.glob("*.json"))


def n8n_env(user_folder: Path, port: int) -> dict[str, str]:
    """n8n's environment: its own folder, loopback only, telemetry and outbound features off."""
    keep = ("PATH", "LANG", "LC_ALL", "TZ", "TMPDIR")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(
        {
            "HOME": str(user_folder),
            "N8N_USER_FOLDER": str(user_folder),
            "N8N_ENCRYPTION_KEY": ENCRYPTION_KEY,
            "N8N_ENFORCE_SETTINGS_FILE_PERMISSIONS": "true",
            "N8N_PORT": str(port),
            "N8N_LISTEN_ADDRESS": "127.0.0.1",
            "N8N_HOST": "127.0.0.1",
            "N8N_PROTOCOL": "http",
            "WEBHOOK_URL": f"http://127.0.0.1:{port}/",
            "N8N_DIAGNOSTICS_ENABLED": "false",
            "N8N_VERSION_NOTIFICATIONS_ENABLED": "false",
            "N8N_TEMPLATES_ENABLED": "false",
            "N8N_PERSONALIZATION_ENABLED": "false",
            "N8N_HIRING_BANNER_ENABLED": "false",
            "N8N_DYNAMIC_BANNERS_ENABLED": "false",
            "N8N_RUNNERS_ENABLED": "false",
            "N8N_SECURE_COOKIE": "false",
            "N8N_LOG_LEVEL": "info",
            "NO_PROXY": "127.0.0.1,localhost",
            "DB_TYPE": "sqlite",
            "DB_SQLITE_POOL_SIZE": "2",
            "N8N_BLOCK_ENV_ACCESS_IN_NODE": "true",
            "N8N_GIT_NODE_DISABLE_BARE_REPOS": "true",
        }
    )
    return env


@dataclass
class N8n:
    """One n8n process (and its process group) with its own user folder."""

    workdir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "n8n.log"

    @property
    def env(self) -> dict[str, str]:
        return n8n_env(self.workdir / "home", self.port)

    def webhook_url(self, name: str) -> str:
        return f"{self.base_url}/webhook/{WEBHOOK_PATHS[name]}"

    def chat_url(self, name: str) -> str:
        return f"{self.base_url}/webhook/{CHAT_TRIGGER_IDS[name]}/chat"

    def cli(self, *args: str) -> None:
        """Run an n8n CLI command against this instance's database (n8n must be stopped)."""
        result = subprocess.run(
            [str(n8n_bin()), *args],
            env=self.env,
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=180,
        )
        if result.returncode != 0:
            raise RuntimeError(f"n8n {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")

    def provision(self, creds: list[dict[str, Any]], workflows: Iterable[Path]) -> None:
        """Import credentials and workflows, then mark every workflow active for the next start."""
        (self.workdir / "home").mkdir(parents=True, exist_ok=True)
        creds_file = self.workdir / "credentials.json"
        creds_file.write_text(json.dumps(creds))
        wf_dir = self.workdir / "workflows"
        wf_dir.mkdir(exist_ok=True)
        for path in workflows:
            shutil.copy(path, wf_dir / path.name)
        self.cli("import:credentials", f"--input={creds_file}")
        # import:workflow always imports inactive (--activeState needs queue mode); activate after.
        self.cli("import:workflow", "--separate", f"--input={wf_dir}")
        self.cli("update:workflow", "--all", "--active=true")

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [str(n8n_bin()), "start"],
            env=self.env,
            cwd=self.workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so stop() reaches its children only
        )
        log.close()
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self) -> None:
        """Wait for /healthz, then for every workflow's webhook to be registered (not 404)."""
        deadline = time.monotonic() + START_TIMEOUT
        with httpx.Client(timeout=5.0, trust_env=False) as client:
            for probe in self._readiness_probes():
                while True:
                    if self.process is not None and self.process.poll() is not None:
                        raise RuntimeError(
                            f"n8n exited with {self.process.returncode}:\n{self.log_tail()}"
                        )
                    try:
                        if probe(client):
                            break
                    except httpx.TransportError:
                        pass
                    if time.monotonic() > deadline:
                        raise RuntimeError(
                            f"n8n not ready after {START_TIMEOUT} s:\n{self.log_tail()}"
                        )
                    time.sleep(0.25)  # polling a starting server, not synchronising a test

    def _readiness_probes(self) -> list[Any]:
        def healthz(client: httpx.Client) -> bool:
            r = client.get(f"{self.base_url}/healthz")
            return r.status_code == 200 and r.json().get("status") == "ok"

        def webhook(url: str) -> Any:
            # Without a token a registered JWT webhook answers 401 before running anything.
            return lambda client: client.post(url, json={}).status_code == 401

        def chat(url: str) -> Any:
            body = {"action": "loadPreviousSession", "sessionId": f"readiness-{uuid.uuid4()}"}
            return lambda client: client.post(url, json=body).status_code == 200

        probes = [healthz]
        probes += [webhook(self.webhook_url(name)) for name in WEBHOOK_PATHS]
        probes += [chat(self.chat_url(name)) for name in CHAT_TRIGGER_IDS]
        return probes

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"


def sign(
    claims: dict[str, Any] | None = None,
    *,
    secret: str = SESSION_SECRET,
    ttl: int = 30,
    now: int | None = None,
) -> str:
    """A token like the proxy's: HS256 with the secret's text, `exp` = `iat` + ttl, a fresh jti."""
    issued = int(time.time()) if now is None else now
    payload: dict[str, Any] = {"iat": issued, "exp": issued + ttl, "jti": uuid.uuid4().hex}
    payload.update(claims or {})
    return jwt.encode(payload, secret, algorithm="HS256")


def chat_body(
    message: str, session_id: str | None = None, action: str = "sendMessage"
) -> dict[str, Any]:
    body: dict[str, Any] = {"action": action, "sessionId": session_id or str(uuid.uuid4())}
    if action == "sendMessage":
        body["chatInput"] = message
    return body


def parse_ndjson(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]
