"""Attachments in the widget (issue 18, docs/attachments.md), in real headless Chromium: the
paperclip's files reach n8n as multipart, the limits are explained before sending, the
gateway's refusals in words, a WebSocket-first widget sends files over HTTP."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from .conftest import Visit
from .harness import Stack
from .test_widget import BOT, HOST, NOTICE, USER, ask, launcher

pytestmark = pytest.mark.browser

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 8
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n%%EOF\n"
ATTACH = {"attach": "image/png,application/pdf", "attach-max-bytes": "100000"}
PICKER = f"{HOST} input[type=file]"
CHIPS = f"{HOST} .chips .chip"


def png(name: str = "cat.png", data: bytes = PNG, mime: str = "image/png") -> dict[str, Any]:
    return {"name": name, "mimeType": mime, "buffer": data}


def test_attached_files_reach_n8n_and_stay_in_the_conversation(make_stack: Any, visit: Any) -> None:
    stack: Stack = make_stack(ATTACH_ENABLED="true")
    v: Visit = visit()
    page = v.open(stack, **ATTACH)
    launcher(page).click()
    expect(page.get_by_role("button", name="Attach a file")).to_be_visible()
    page.set_input_files(PICKER, [png(), png("doc.pdf", PDF, "application/pdf")])
    expect(page.locator(CHIPS)).to_have_count(2)
    expect(page.locator(CHIPS).first).to_contain_text("cat.png")
    v.shot("chips")
    page.get_by_role("button", name="Remove doc.pdf").click()
    expect(page.locator(CHIPS)).to_have_count(1)
    ask(page, "what is this")
    expect(page.locator(BOT).last).to_have_text("You said: what is this")
    expect(page.locator(USER).last).to_contain_text("cat.png")
    expect(page.locator(CHIPS)).to_have_count(0)  # sent: the chips are gone
    v.shot("sent")
    sent = stack.n8n.received[-1]
    assert sent["chatInput"] == "what is this"
    assert sent["files"] == [{"name": "cat.png", "type": "image/png", "data": PNG}]
    page.reload()  # the conversation, kept in the browser, still names the file
    page.wait_for_function("() => !!(window.QuartProxyChat && window.QuartProxyChat.version)")
    launcher(page).click()
    expect(page.locator(USER).last).to_contain_text("cat.png")


def test_limits_are_explained_before_anything_is_sent(make_stack: Any, visit: Any) -> None:
    stack: Stack = make_stack(ATTACH_ENABLED="true")
    v: Visit = visit()
    page = v.open(stack, **ATTACH)
    launcher(page).click()
    page.set_input_files(PICKER, [png("big.png", PNG + bytes(100_000))])
    expect(page.locator(NOTICE).last).to_have_text(
        "A file is too large: the limit is 98 KB per file."
    )
    page.set_input_files(PICKER, [png("x.svg", b"<svg/>", "image/svg+xml")])
    expect(page.locator(NOTICE).last).to_have_text("This type of file cannot be sent here.")
    page.set_input_files(PICKER, [png(f"{i}.png") for i in range(4)])
    expect(page.locator(NOTICE).last).to_have_text("At most 3 files per message.")
    expect(page.locator(CHIPS)).to_have_count(3)
    v.shot("refused-before-sending")
    assert stack.n8n.received == []


def test_a_refusal_of_the_gateway_is_a_sentence_and_the_files_come_back(
    make_stack: Any, visit: Any
) -> None:
    stack: Stack = make_stack(ATTACH_ENABLED="true")
    v: Visit = visit()
    page = v.open(stack, **ATTACH)
    launcher(page).click()
    page.set_input_files(PICKER, [png("fake.png", PDF)])  # a PDF's bytes under a PNG's name
    ask(page, "look at this")
    expect(page.locator(NOTICE).last).to_have_text(
        "A file\u2019s content does not match its type. Please send another file."
    )
    expect(page.locator(CHIPS)).to_have_count(1)  # given back, with the text, to send again
    expect(page.locator(f"{HOST} textarea")).to_have_value("look at this")
    v.shot("type-mismatch")
    assert stack.n8n.received == []


def test_a_websocket_first_widget_sends_files_over_http(make_stack: Any, visit: Any) -> None:
    # a message typed within a second of the socket's session scores as automated: not here
    stack: Stack = make_stack(ATTACH_ENABLED="true", BOT_ENFORCE="false")
    v: Visit = visit()
    page = v.open(stack, transports="ws,sse", **ATTACH)
    launcher(page).click()
    ask(page, "text first")
    expect(page.locator(BOT).last).to_have_text("You said: text first")
    page.set_input_files(PICKER, [png()])
    ask(page, "then a file")
    expect(page.locator(BOT).last).to_have_text("You said: then a file")
    assert stack.n8n.received[-1]["files"][0]["data"] == PNG
    posts = [u for u in v.requests if u.endswith("/api/v1/chat/message")]
    assert len(posts) == 1  # the text went over the WebSocket, the file over SSE


def test_a_file_dropped_on_the_panel_becomes_a_chip(make_stack: Any, visit: Any) -> None:
    stack: Stack = make_stack(ATTACH_ENABLED="true")
    v: Visit = visit()
    page = v.open(stack, **ATTACH)
    launcher(page).click()
    page.evaluate(
        """() => {
            const panel = document.querySelector('#quartproxy-chat').shadowRoot
                .querySelector('form').parentNode;
            const dt = new DataTransfer();
            dt.items.add(new File(['%PDF-1.7 dropped'], 'dropped.pdf', {type: 'application/pdf'}));
            const init = {dataTransfer: dt, bubbles: true, cancelable: true};
            panel.dispatchEvent(new DragEvent('drop', init));
        }"""
    )
    expect(page.locator(CHIPS)).to_have_count(1)
    expect(page.locator(CHIPS)).to_contain_text("dropped.pdf")
