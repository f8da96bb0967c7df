"""The Webcam page's ICE (STUN/TURN) configuration: none unless configured, and a sentence for each mistake."""

from __future__ import annotations

import pytest

from views.ice import IceConfigError, ice_servers_from, rtc_configuration


def test_no_ice_server_unless_configured_and_clear_errors_when_misconfigured() -> None:
    assert ice_servers_from(None, {}) == [] and ice_servers_from({}, {}) == []
    assert rtc_configuration([]) == {"iceServers": []}

    secrets = {"ice_servers": [{"urls": "stun:stun.example.org:3478"},
                               {"urls": ["turn:turn.example.org:3478?transport=udp", "turns:turn.example.org:5349"],
                                "username": "posescope", "credential": "s3cret"}]}
    assert ice_servers_from(secrets, {}) == [
        {"urls": ["stun:stun.example.org:3478"]},
        {"urls": ["turn:turn.example.org:3478?transport=udp", "turns:turn.example.org:5349"],
         "username": "posescope", "credential": "s3cret"}]
    environ = {"POSESCOPE_ICE_SERVERS": '[{"urls": "stun:stun.lan:3478"}]'}
    assert ice_servers_from(secrets, environ) == [{"urls": ["stun:stun.lan:3478"]}]  # the environment wins

    for secrets, words in [
        ({"ice_servers": [{"urls": "turn:turn.example.org"}]}, "needs a `username` and a `credential`"),
        ({"ice_servers": [{"urls": "http://example.org"}]}, "is not a STUN or TURN URL"),
        ({"ice_servers": [{"url": "stun:stun.example.org"}]}, "must be a table with `urls`"),
        ({"ice_servers": [{"urls": "stun:a.org", "password": "x"}]}, "unknown keys ['password']"),
        ({"ice_servers": "stun:stun.example.org"}, "must be a list of servers"),
    ]:
        with pytest.raises(IceConfigError, match=None) as error:
            ice_servers_from(secrets, {})
        assert words in str(error.value) and ".streamlit/secrets.toml" in str(error.value)
    with pytest.raises(IceConfigError, match="POSESCOPE_ICE_SERVERS is not valid JSON"):
        ice_servers_from(None, {"POSESCOPE_ICE_SERVERS": "[{urls: stun:x}]"})
