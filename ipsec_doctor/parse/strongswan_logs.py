"""The charon log -> LogEvents, with the IKE_SA context a single line does not carry.

Contract (used by :mod:`ipsec_doctor.parse.strongswan`; the wording lives in
``platforms/strongswan_signatures.yaml``):
- :func:`charon_events` splits a charon log (``/var/log/charon.log`` or syslog/journal lines of
  charon) into lines with :func:`ipsec_doctor.parse.logs.split_log_lines`, maps each line with
  the signature table (:func:`ipsec_doctor.parse.logs.classify_lines`) and returns
  ``(events, unclassified lines)`` like :func:`~ipsec_doctor.parse.logs.classify_log_text`.
- charon prefixes the lines of an IKE_SA with ``<name|id>`` (``<s2s-ikev2|2>``; a responder's
  SA is ``<2>`` until its config is chosen). The same wording means different things in
  different phases (``received NO_PROPOSAL_CHOSEN error notify`` ends an IKEv1 main mode when
  the SA is still connecting, and a quick mode when it is established), so each line is read
  with the state of its IKE_SA at that point of the log:

  * a signature's ``detail`` may hold ``when_established: <event>`` and/or
    ``when_connecting: <event>``: the event to report instead when the line's IKE_SA is (or is
    not yet) ESTABLISHED; ``ignore`` drops the line (it stays unclassified). Lines without an
    IKE_SA prefix keep the signature's event. These two keys never reach the event's detail.
  * every event of an IKE_SA gets ``detail["connection"]`` (the connection name, also when the
    name is only learnt later in the log) and ``detail["ike_sa"]`` (charon's unique id), and
    ``LogEvent.peer`` when the line itself names no address: the remote address of that SA
    (from ``initiating ... to X``, ``X is initiating``, ``received packet: from X[...]``,
    ``sending packet: ... to X[...]`` or ``established between ...``).
  * ``phase1_retransmit`` / ``phase1_no_response`` events also get ``detail["port"]``: the UDP
    port the unanswered request went to (the last ``sending packet`` of that SA before the
    line), and ``detail["answered_ports"]``: the ports (comma separated, sorted) on which the
    peer had answered that SA before (``received packet: from X[500]``). ``port`` 4500 with
    ``answered_ports`` 500 is "IKE_SA_INIT / main mode 1-4 answered, IKE_AUTH / main mode 5
    not": UDP 4500 does not get through.
- IKE_SA ids restart with the daemon: a ``Starting ...`` or ``SIGTERM received`` line (any
  ``isakmp_on`` / ``isakmp_off`` event) starts a new epoch, so ids of an earlier run never mix.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from ipaddress import ip_address

from ipsec_doctor.errors import ConfigError
from ipsec_doctor.model.events import Event
from ipsec_doctor.model.state import Evidence, IPAddress, LogEvent
from ipsec_doctor.parse.logs import LogLine, classify_lines, split_log_lines
from ipsec_doctor.platforms.loader import Platform

WHEN_ESTABLISHED = "when_established"
WHEN_CONNECTING = "when_connecting"
IGNORE = "ignore"

# Sample device lines:
#   "Nov 23 07:13:54 14[IKE] <s2s-ikev2|1> received AUTHENTICATION_FAILED notify error"
#   "Nov 23 07:13:54 10[IKE] <1> 198.51.100.1 is initiating an IKE_SA"
#   "Nov 23 07:13:54 gw1 charon-systemd[812]: 09[IKE] <s2s-ikev2|2> sending DPD request"
_PREFIX = re.compile(
    r"\b\d{1,3}\[[A-Z]{3}\]\s+<(?:(?P<name>[^|<>\s]+)\|)?(?P<id>\d+)>\s+(?P<msg>.*)$"
)
_ADDR = r"(?P<addr>[0-9A-Fa-f:.]*[0-9A-Fa-f])"
# Sample device line: "initiating IKE_SA s2s-ikev2[1] to 198.51.100.129"
_INITIATING = re.compile(rf"initiating (?:\w+ Mode )?IKE_SA \S+\[\d+\] to {_ADDR}\s*$")
# Sample device line: "198.51.100.1 is initiating an IKE_SA" / "... a Main Mode IKE_SA"
_RESPONDING = re.compile(rf"^{_ADDR} is initiating an? (?:\w+ Mode )?IKE_SA")
# Sample device line: "received packet: from 198.51.100.129[500] to 198.51.100.1[500] (472 bytes)"
_RECEIVED = re.compile(rf"received packet: from {_ADDR}\[(?P<port>\d+)\] to ")
# Sample device line: "sending packet: from 198.51.100.1[4500] to 198.51.100.129[4500] (288 bytes)"
_SENDING = re.compile(rf"sending packet: from \S+ to {_ADDR}\[(?P<port>\d+)\]")
# Sample device line: "IKE_SA s2s-ikev2[1] established between 198.51.100.1[a]...198.51.100.129[b]"
_ESTABLISHED = re.compile(rf"IKE_SA \S+\[\d+\] established between \S+?\.\.\.{_ADDR}\[")
# Sample device line: "IKE_SA s2s-ikev2[1] state change: CONNECTING => ESTABLISHED"
_STATE_CHANGE = re.compile(r"IKE_SA \S+\[\d+\] state change: \w+ => (?P<state>\w+)")
# Sample device lines: "selected peer config 's2s-ikev2'" / "selected peer config \"s2s-ikev1\""
_SELECTED = re.compile(r"selected peer config ['\"](?P<name>[^'\"]+)['\"]")

_EPOCH_EVENTS = frozenset({Event.ISAKMP_ON.value, Event.ISAKMP_OFF.value})
_PORT_EVENTS = frozenset({Event.PHASE1_RETRANSMIT.value, Event.PHASE1_NO_RESPONSE.value})


def _address(text: str | None) -> IPAddress | None:
    if not text:
        return None
    try:
        return ip_address(text)
    except ValueError:
        return None


@dataclass
class _IkeSa:
    """What the log has said so far about one IKE_SA."""

    name: str = ""
    peer: IPAddress | None = None
    established: bool = False
    last_port: str = ""
    answered_ports: set[str] = field(default_factory=set)


def _context_key(line: LogLine, epoch: int) -> tuple[int, str, str, str] | None:
    """(epoch, id, name, message) of a line with an IKE_SA prefix."""
    match = _PREFIX.search(line.text)
    if match is None:
        return None
    return epoch, match["id"], match["name"] or "", match["msg"]


def _learn_static(lines: Sequence[LogLine], platform: Platform) -> dict[tuple[int, str], _IkeSa]:
    """First pass: the name and the peer of every IKE_SA (they may be learnt late)."""
    found: dict[tuple[int, str], _IkeSa] = {}
    epoch = 0
    for line in lines:
        events, _ = classify_lines([line], platform.signatures)
        if any(e.event in _EPOCH_EVENTS for e in events):
            epoch += 1
        key = _context_key(line, epoch)
        if key is None:
            continue
        sa = found.setdefault(key[:2], _IkeSa())
        name, message = key[2], key[3]
        selected = _SELECTED.search(message)
        sa.name = sa.name or name or (selected["name"] if selected else "")
        if sa.peer is None:
            for pattern in (_INITIATING, _RESPONDING, _RECEIVED, _SENDING, _ESTABLISHED):
                match = pattern.search(message)
                if match and (address := _address(match["addr"])) is not None:
                    sa.peer = address
                    break
    return found


def _check_overrides(platform: Platform) -> None:
    """Every ``when_*`` value is an event name or ``ignore`` (a typo must not pass silently)."""
    known = {e.value for e in Event} | {IGNORE}
    for signature in platform.signatures:
        for key in (WHEN_ESTABLISHED, WHEN_CONNECTING):
            value = signature.detail.get(key)
            if value is not None and value not in known:
                raise ConfigError(
                    f"{platform.name}_signatures.yaml: {signature.regex!r}: {key}: unknown "
                    f"event {value!r}"
                )


def charon_events(
    platform: Platform,
    text: str,
    *,
    reference: datetime | None = None,
    command: str = "",
    device: str = "",
    sample: int = 1,
    line_offset: int = 0,
) -> tuple[tuple[LogEvent, ...], tuple[Evidence, ...]]:
    """(events, unclassified lines) of a charon log (see the module contract)."""
    _check_overrides(platform)
    lines = split_log_lines(text, platform, reference)
    if line_offset:
        lines = [replace(line, line_no=line.line_no + line_offset) for line in lines]
    static = _learn_static(lines, platform)
    dynamic: dict[tuple[int, str], _IkeSa] = {}
    events: list[LogEvent] = []
    unclassified: list[Evidence] = []
    epoch = 0
    for line in lines:
        found, rest = classify_lines(
            [line], platform.signatures, command=command, device=device, sample=sample
        )
        unclassified.extend(rest)
        if any(e.event in _EPOCH_EVENTS for e in found):
            epoch += 1
        key = _context_key(line, epoch)
        if key is None:
            events.extend(found)
            continue
        sa_key = key[:2]
        known = static.get(sa_key, _IkeSa())
        state = dynamic.setdefault(sa_key, _IkeSa())
        message = key[3]
        for event in found:
            adjusted = _adjust(event, known, state, sa_key[1])
            if adjusted is None:
                if event.source is not None:
                    unclassified.append(event.source)
                continue
            events.append(adjusted)
        _update(state, message, known)
    return tuple(events), tuple(sorted(unclassified, key=lambda e: e.line_no))


def _adjust(event: LogEvent, known: _IkeSa, state: _IkeSa, ike_id: str) -> LogEvent | None:
    """The event as the line's IKE_SA context makes it (None: dropped)."""
    detail = dict(event.detail)
    override = detail.pop(WHEN_ESTABLISHED, None) if state.established else None
    detail.pop(WHEN_ESTABLISHED, None)
    connecting = detail.pop(WHEN_CONNECTING, None)
    if not state.established and connecting is not None:
        override = connecting
    name = event.event
    if override == IGNORE:
        return None
    if override:
        name = override
    if known.name:
        detail["connection"] = known.name
    detail["ike_sa"] = ike_id
    if name in _PORT_EVENTS:
        if state.last_port:
            detail["port"] = state.last_port
        if state.answered_ports:
            detail["answered_ports"] = ",".join(sorted(state.answered_ports, key=int))
    peer = event.peer if event.peer is not None else known.peer
    return replace(event, event=name, peer=peer, detail=detail)


def _update(state: _IkeSa, message: str, known: _IkeSa) -> None:
    """Advance one IKE_SA's state by one of its log lines."""
    if _ESTABLISHED.search(message):
        state.established = True
    elif change := _STATE_CHANGE.search(message):
        state.established = change["state"] in ("ESTABLISHED", "REKEYING", "REKEYED")
    if sent := _SENDING.search(message):
        state.last_port = sent["port"]
    if received := _RECEIVED.search(message):
        sender = _address(received["addr"])
        if known.peer is None or sender == known.peer:
            state.answered_ports.add(received["port"])
