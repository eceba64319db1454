"""`python -m quartproxy.healthcheck [URL]`: the container's liveness check (Dockerfile).

Exit 0 when the proxy answers `/health` at all — 200 (ok) or 503 (degraded, or draining on
shutdown): the process is alive and restarting it would not help. Exit 1 when it does not
answer. Standard library only, so it adds nothing to the image.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request

DEFAULT_URL = "http://127.0.0.1:8000/health"


def check(url: str = DEFAULT_URL, timeout: float = 2.0) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return 0 if response.status == 200 else 1
    except urllib.error.HTTPError as err:
        return 0 if err.code == 503 else 1
    except OSError:
        return 1


if __name__ == "__main__":
    sys.exit(check(sys.argv[1] if len(sys.argv) > 1 else DEFAULT_URL))
