"""Session-wide real n8n (and the fake OpenAI server its AI Agent calls) for tests/e2e.

pytest-trio fixtures are per test, so these are plain synchronous session fixtures: n8n starts
once per test session (about 20 s), and stops when the session ends.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import trio

from tests.e2e import harness
from tests.e2e.fake_openai import FakeOpenAI, ThreadedServer


@dataclass
class FakeModel:
    app: FakeOpenAI
    server: ThreadedServer
    base_url: str  # what n8n's OpenAI credential points at (ends in /v1)

    async def open_gate(self, name: str) -> None:
        await trio.to_thread.run_sync(self.server.open_gate, name)


@pytest.fixture(scope="session")
def fake_model() -> Iterator[FakeModel]:
    app = FakeOpenAI()
    server = ThreadedServer(app)
    url = server.start()
    try:
        yield FakeModel(app, server, f"{url}/v1")
    finally:
        server.stop()


@pytest.fixture(scope="session")
def n8n(tmp_path_factory: pytest.TempPathFactory, fake_model: FakeModel) -> Iterator[harness.N8n]:
    harness.ensure_installed()
    instance = harness.N8n(tmp_path_factory.mktemp("n8n"))
    instance.provision(harness.credentials(fake_model.base_url), harness.workflow_files())
    instance.start()
    try:
        yield instance
    finally:
        instance.stop()
