"""`hypercorn -c hypercorn.toml quartproxy.asgi:app`: the app built from the environment.

Hypercorn looks the name up in the module's globals (`eval`), so the lazy `quartproxy.app`
(a module `__getattr__`) is not found by it; this module builds the app on import instead.
`python -m quartproxy` is the recommended way to run (graceful drain, multi-worker metrics).
"""

from . import app_from_environment

app = app_from_environment()
