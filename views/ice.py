"""The Webcam page's WebRTC networking: which STUN/TURN servers (ICE servers) the browser and the server may use.

By default none: on this machine WebRTC needs no server, so nothing is contacted and the webcam works
offline. Servers are configured in .streamlit/secrets.toml or the POSESCOPE_ICE_SERVERS environment
variable (see the README); a malformed setting is refused with a sentence that says what to fix.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from aiortc.rtcicetransport import parse_stun_turn_uri

ICE_ENVIRONMENT_VARIABLE = "POSESCOPE_ICE_SERVERS"


class IceConfigError(ValueError):
    """The configured ICE servers are not usable; the message says what to fix."""


def ice_servers_from(secrets: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
                     ) -> list[dict[str, Any]]:
    """The STUN/TURN servers WebRTC may use: [] (none, nothing contacted) unless configured.

    secrets: the `[webrtc]` table of .streamlit/secrets.toml, whose `ice_servers` is a list of
    {urls = "stun:…" or ["turn:…", …], username = "…", credential = "…"}. environ: the process
    environment; POSESCOPE_ICE_SERVERS, a JSON list of the same shape, wins over the secrets.
    TURN servers need a username and a credential. Raises IceConfigError on anything malformed.
    """
    raw: Any = None
    source = ""
    text = (environ or {}).get(ICE_ENVIRONMENT_VARIABLE, "").strip()
    if text:
        source = f"the environment variable {ICE_ENVIRONMENT_VARIABLE}"
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as error:
            raise IceConfigError(f"{source} is not valid JSON ({error.msg} at character {error.pos}).") from None
    elif secrets and secrets.get("ice_servers") is not None:
        source, raw = "ice_servers in the [webrtc] section of .streamlit/secrets.toml", secrets["ice_servers"]
    if raw is None:
        return []
    if not isinstance(raw, Sequence) or isinstance(raw, str | bytes):
        raise IceConfigError(f"{source} must be a list of servers, each with `urls`.")
    return [_ice_server(entry, i, source) for i, entry in enumerate(raw)]


def _ice_server(entry: Any, i: int, source: str) -> dict[str, Any]:
    where = f"Server {i + 1} in {source}"
    if not isinstance(entry, Mapping) or "urls" not in entry:
        raise IceConfigError(f"{where} must be a table with `urls`, e.g. {{urls = \"stun:stun.example.org:3478\"}}.")
    extra = set(entry) - {"urls", "username", "credential"}
    if extra:
        raise IceConfigError(f"{where} has unknown keys {sorted(extra)}; use urls, username and credential.")
    urls = [entry["urls"]] if isinstance(entry["urls"], str) else entry["urls"]
    if not isinstance(urls, Sequence) or not urls or not all(isinstance(url, str) for url in urls):
        raise IceConfigError(f"{where}: `urls` must be a URL or a list of URLs.")
    for url in urls:
        try:
            parse_stun_turn_uri(url)
        except ValueError:
            raise IceConfigError(f"{where}: {url!r} is not a STUN or TURN URL "
                                 "(stun:host:port, turn:host:port?transport=udp, turns:host:port).") from None
    server: dict[str, Any] = {"urls": list(urls)}
    for key in ("username", "credential"):
        if entry.get(key) is not None:
            if not isinstance(entry[key], str):
                raise IceConfigError(f"{where}: `{key}` must be text.")
            server[key] = entry[key]
    if any(url.startswith("turn") for url in urls) and not ("username" in server and "credential" in server):
        raise IceConfigError(f"{where} is a TURN server: it needs a `username` and a `credential`.")
    return server


def rtc_configuration(ice_servers: list[dict[str, Any]]) -> dict[str, Any]:
    """The RTCConfiguration for both ends; with [] neither the browser nor the server contacts any server."""
    return {"iceServers": [dict(server) for server in ice_servers]}

