"""multipart/form-data as browsers write it, for the request to n8n: the framing only (pure);
the file bytes are streamed between these pieces by upstream/upload_body.py."""

from __future__ import annotations

import os

# What browsers (WHATWG FormData) escape in a name or filename: ", CR and LF.
_ESCAPES = str.maketrans({'"': "%22", "\r": "%0D", "\n": "%0A"})


def new_boundary() -> str:
    return "----quartproxy" + os.urandom(16).hex()


def quote(value: str) -> str:
    return value.translate(_ESCAPES)


def part_head(boundary: str, name: str, filename: str | None, ctype: str | None) -> bytes:
    """The delimiter and headers before one part's data."""
    disp = f'Content-Disposition: form-data; name="{quote(name)}"'
    if filename is not None:
        disp += f'; filename="{quote(filename)}"'
    head = f"--{boundary}\r\n{disp}\r\n"
    if ctype:
        head += f"Content-Type: {ctype}\r\n"
    return (head + "\r\n").encode("utf-8")


def part_tail() -> bytes:
    return b"\r\n"


def closing(boundary: str) -> bytes:
    return f"--{boundary}--\r\n".encode("ascii")
