"""Signed visitors' conversations: one conversation per user and site, found again from any
device, and erased by user id (docs/identity.md).

A user's conversation is an ordinary session (a uuid4, its history, its answers); the store
also keeps a small *pointer* record under the user's key (core.identity.user_key, a keyed hash
of site and user id) whose metadata names that session. A new session for the same user finds
the pointer and shares the session id, so every device reads and continues the same history;
another user (or an anonymous visitor) never finds it. The pointer lives as long as the
history it leads to may (HISTORY_RETENTION_DAYS after the last session), so erasure by user id
reaches everything kept for that user.
"""

from __future__ import annotations

import uuid

from .core.identity import IdentityPolicy, VerifiedUser, user_key
from .services import Services
from .store.base import SessionRecord, Store

FOREVER_SECONDS = 10 * 365 * 86400.0


def _key(svc: Services, policy: IdentityPolicy, sub: str) -> str:
    return user_key(svc.settings.jwt_secret_key, policy.audience, sub)


def erase_command(argv: list[str]) -> int:
    """`python -m quartproxy erase-user <user id>`: erasure from a shell, against the store of
    the settings in the environment (sqlite, production; the stateless mode's memory lives in
    the running workers: use POST /ops/erase-user there)."""
    import sys
    import time

    import trio

    from .config import ConfigError, environment, load_settings
    from .policies import identity_policy
    from .store import open_store

    if len(argv) != 1 or not argv[0] or len(argv[0]) > 256:
        print("usage: python -m quartproxy erase-user <user id>", file=sys.stderr)
        return 2
    try:
        settings = load_settings(environment())
    except ConfigError as exc:
        print(f"erase-user: {exc}", file=sys.stderr)
        return 2
    if settings.deployment_mode == "stateless":
        print(
            "erase-user: the stateless mode keeps nothing on disk; use POST /ops/erase-user",
            file=sys.stderr,
        )
        return 2
    # every site's pointer: a site of SITES_FILE is the audience of its users' tokens
    audiences = settings.sites.ids if settings.sites else (identity_policy(settings).audience,)
    keys = [user_key(settings.jwt_secret_key, aud, argv[0]) for aud in audiences]

    async def run() -> bool:
        async with open_store(settings) as store:
            found = [await erase_user(store, key, time.time()) for key in keys]
        return any(named is not None for named in found)

    erased = trio.run(run)
    print("erased" if erased else "nothing kept for this user")
    return 0


def _pointer_ttl(svc: Services) -> float:
    s = svc.settings
    days = s.history_retention_days
    kept = days * 86400.0 if days > 0 else FOREVER_SECONDS
    return kept + s.session_ttl_seconds  # history written late in a session is reached too


async def conversation_of(
    svc: Services, policy: IdentityPolicy, user: VerifiedUser, origin: str, now: float
) -> str:
    """The session id of the user's conversation: the one the pointer names when that
    session has not been ended (DELETE or erasure remove the pointer too), else a new one.
    Two first sessions created at the same instant may each start one; the later pointer wins."""
    key = _key(svc, policy, user.sub)
    pointer = await svc.store.get_session(key, now)
    named = pointer.metadata.get("conversation") if pointer is not None else None
    session_id = named if isinstance(named, str) else str(uuid.uuid4())
    await svc.store.put_session(
        SessionRecord(key, origin, "", now, now + _pointer_ttl(svc), {"conversation": session_id})
    )
    return session_id


async def end_conversation(svc: Services, policy: IdentityPolicy, sub: str) -> bool:
    """Erase the user's conversation (history, answers) and its pointer, on every device,
    and stop its answer running here. False when nothing was kept for that user."""
    key = _key(svc, policy, sub)
    named = await erase_user(svc.store, key, svc.clock())
    if named is None:
        return False
    if named:
        svc.turns.cancel_session(named)
    return True


async def erase_user(store: Store, key: str, now: float) -> str | None:
    """The store's part of an erasure (also `python -m quartproxy erase-user`): the
    conversation's session id ("" when the pointer named none), or None when no pointer.
    An answer still running on a worker cannot write the erased session back (the store
    drops late writes for a deleted session)."""
    pointer = await store.get_session(key, now)
    if pointer is None:
        return None
    named = pointer.metadata.get("conversation")
    if isinstance(named, str):
        await store.delete_session(named)
    await store.delete_session(key)
    return named if isinstance(named, str) else ""
