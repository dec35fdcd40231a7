"""Who may use the service: a bearer token, compared in constant time, and where it may listen without one.

The deployment only ever holds the token's SHA-256 digest (Ray shows deployment arguments in its state API
and dashboard), and compares digests with `hmac.compare_digest`, so neither the comparison's timing nor
the cluster's metadata gives the token away.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import socket

from inpaint_studio.core.errors import BadInputError

SCHEME = "bearer"
MIN_TOKEN_CHARS = 16


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    """A fresh random token (URL-safe, 256 bits)."""
    return secrets.token_urlsafe(32)


def check_token_strength(token: str) -> None:
    if len(token) < MIN_TOKEN_CHARS:
        raise BadInputError(
            f"The token has {len(token)} characters; use at least {MIN_TOKEN_CHARS} (e.g. the output of "
            '`python -c "import secrets; print(secrets.token_urlsafe(32))"`).'
        )


def authorized(header: str | None, token_digest: str | None) -> bool:
    """Whether an Authorization header carries the token (always True when the server has none)."""
    if token_digest is None:
        return True
    scheme, _, given = (header or "").partition(" ")
    if scheme.lower() != SCHEME or not given.strip():
        # Still compare, so a missing header costs the same time as a wrong one.
        hmac.compare_digest(digest(""), token_digest)
        return False
    return hmac.compare_digest(digest(given.strip()), token_digest)


def is_loopback(host: str) -> bool:
    """Whether `host` (a name or an address) only accepts connections from this computer."""
    name = host.strip().strip("[]")
    if name in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        pass
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(name, None)}
    except OSError:
        return False
    return bool(addresses) and all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addresses)


def check_listen(host: str, token: str | None) -> None:
    """Listening beyond this computer needs a token: refuse it otherwise (one sentence)."""
    if token is None and not is_loopback(host):
        raise BadInputError(
            f"Listening on {host} lets other computers use this engine, so it needs a token: create one "
            '(e.g. `python -c "import secrets; print(secrets.token_urlsafe(32))" > token.txt`) and pass '
            "--token-file token.txt, or listen on 127.0.0.1."
        )
