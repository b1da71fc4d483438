"""Secrets never leave the collect layer: redaction of raw device text.

Contract:
- :func:`redact` replaces the secret value of every known secret-bearing line with
  ``<redacted>`` (:data:`REDACTED`) and leaves everything else byte for byte, including the
  number of lines (so evidence line numbers stay true). It is idempotent.
- It is applied to every raw text before it is stored in a
  :class:`~ipsec_doctor.model.capture.CommandCapture` (live and offline alike), to error
  messages, to netmiko session logs (:class:`RedactingSessionLog`) and to netmiko's own log
  records (:class:`RedactingLogFilter`). Captures, reports and logs therefore never see a key.
- Known literal values (a device's password and enable secret) are masked wherever they occur.
- Covered: IOS/IOS-XE/ASA ``crypto isakmp key``, ``pre-shared-key`` (keyrings, IKEv2,
  tunnel-groups), ``key-string`` (single line and the multi-line public-key block),
  ``enable secret/password``, ``username ... password/secret``, ``password`` lines, ASA
  ``passwd``, SNMP communities and v3 passwords, TACACS+/RADIUS keys (global and server
  blocks), OSPF/NTP/BGP authentication keys, F5 ``preshared-key``; strongSwan
  ``secret = ...`` (swanctl.conf) and ``: PSK "..."`` (ipsec.secrets); Linux ESP keys in
  ``ip xfrm state`` (``enc``/``auth``/``aead`` ``0x...``).
- Each expression has a sample device line above it; tests hold realistic lines for each.
"""

from __future__ import annotations

import io
import logging
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

from netmiko.session_log import SessionLog

REDACTED = "<redacted>"

# A secret value: a quoted string or one whitespace-free word.
_VALUE = r'(?:"[^"\n]*"|\S+)'
# IOS encryption-type digit before a value ("0", "5", "6", "7", "8", "9").
_TYPE = r"(?:[0-9]\s+)?"
# Where a keyword may start: line start, after blanks, or after a colon, so that a config line
# quoted in a log message is caught too.
# Sample device line: "%PARSER-5-CFGLOG_LOGGEDCMD: User:admin  logged command:crypto isakmp key k"
_S = r"(?<![^\s:])"

# Line rules: the group named "v" is the secret; everything else is kept.
_LINE_RULES: tuple[re.Pattern[str], ...] = (
    # Sample device line: "crypto isakmp key 6 FLgBaJHXdYY_AcHZZMgQ address 10.2.2.1 no-xauth"
    # Sample device line: "crypto isakmp key cisco123 hostname r2.example.net"
    re.compile(rf"(?P<k>{_S}crypto\s+isakmp\s+key\s+{_TYPE})(?P<v>{_VALUE})", re.IGNORECASE),
    # Sample device line: " pre-shared-key address 10.2.2.1 key cisco123"   (crypto keyring)
    # Sample device line: " pre-shared-key address 10.2.2.0 255.255.255.0 key 6 X"
    # Sample device line: " pre-shared-key hostname r2.example.net key cisco123"
    re.compile(
        rf"(?P<k>\bpre-shared-key\s+(?:address|hostname)\s+\S+(?:\s+\S+)?\s+key\s+{_TYPE})"
        rf"(?P<v>{_VALUE})",
        re.IGNORECASE,
    ),
    # Sample device line: "  pre-shared-key local 6 cisco123"              (IKEv2 keyring)
    # Sample device line: " ikev1 pre-shared-key MySecret"                  (ASA tunnel-group)
    # Sample device line: " ikev2 remote-authentication pre-shared-key cisco"
    re.compile(
        rf"(?P<k>\bpre-shared-key\s+(?!(?:address|hostname)\s)(?:(?:local|remote)\s+)?{_TYPE})"
        rf"(?P<v>{_VALUE})",
        re.IGNORECASE,
    ),
    # Sample device line: "  key-string 7 0822455D0A16"                     (key chain, HSRP)
    re.compile(rf"(?P<k>\bkey-string\s+{_TYPE})(?P<v>{_VALUE})", re.IGNORECASE),
    # Sample device line: "enable secret 9 $9$nhEmQVczB7dqsO$X.HsgL6x1il0RxkOSSvyQYwucySCt7q"
    # Sample device line: "enable secret level 15 5 $1$mERr$hx5rVt7rPNoS4wqbXKX7m0"
    # Sample device line: "enable password 8Ry2YjIyt7RRXU24 encrypted"     (ASA)
    re.compile(
        rf"(?P<k>{_S}enable\s+(?:secret|password)\s+(?:level\s+\d+\s+)?{_TYPE})(?P<v>{_VALUE})",
        re.IGNORECASE,
    ),
    # Sample device line: "username admin privilege 15 secret 9 $9$2MJBozw/9R3UsU$..."
    # Sample device line: "username bob password 0 cisco"
    # Sample device line: "username vpn password Xyz.123 encrypted privilege 15" (ASA)
    # Sample device line: "username bob privilege 15 algorithm-type scrypt secret cisco"
    re.compile(
        rf"(?P<k>{_S}username\s+\S+(?:\s+\S+)*?\s+(?:password|secret)\s+{_TYPE})(?P<v>{_VALUE})",
        re.IGNORECASE,
    ),
    # Sample device line: "passwd 2KFQnbNIdI.2KYOU encrypted"                (ASA)
    re.compile(rf"(?P<k>{_S}passwd\s+)(?P<v>{_VALUE})", re.IGNORECASE),
    # Sample device line: " password 7 0822455D0A16"                         (line vty)
    # Sample device line: " neighbor 10.0.0.2 password 7 02050D480809"      (BGP)
    # Sample device line: " ppp chap password 0 cisco"
    # Only when the value ends the line, so log prose ("password required, but none set")
    # is left alone.
    re.compile(rf"(?P<k>\bpassword\s+{_TYPE})(?P<v>{_VALUE})(?=\s*$)", re.IGNORECASE),
    # Sample device line: "snmp-server community S3cr3tRO RO 10"
    re.compile(rf"(?P<k>{_S}snmp-server\s+community\s+{_TYPE})(?P<v>{_VALUE})", re.IGNORECASE),
    # Sample device line: "snmp-server host 10.0.0.9 version 2c S3cr3tRO"
    # Sample device line: "snmp-server host 10.0.0.9 informs version 2c S3cr3tRO udp-port 162"
    re.compile(
        rf"(?P<k>{_S}snmp-server\s+host\s+\S+\s+(?:(?:traps|informs)\s+)?"
        rf"(?:version\s+(?:1|2c)\s+)?)(?P<v>{_VALUE})",
        re.IGNORECASE,
    ),
    # Sample device line: "snmp-server user nms NMS v3 auth sha AuthPass1 priv aes 128 PrivPass1"
    re.compile(rf"(?P<k>\bsnmp-server\s+user\s+.*?\bauth\s+\S+\s+)(?P<v>{_VALUE})", re.IGNORECASE),
    re.compile(
        rf"(?P<k>\bsnmp-server\s+user\s+.*?\bpriv\s+\S+\s+(?:(?:128|192|256)\s+)?)(?P<v>{_VALUE})",
        re.IGNORECASE,
    ),
    # Sample device line: "tacacs-server key 7 0822455D0A16"
    # Sample device line: "tacacs-server host 10.0.0.5 key cisco"
    # Sample device line: "radius-server host 10.0.0.6 auth-port 1812 acct-port 1813 key 7 X"
    # Sample device line: " server-private 10.0.0.5 key 7 0822455D0A16"
    re.compile(
        rf"(?P<k>{_S}(?:tacacs-server|radius-server|server-private)\b.*?\bkey\s+{_TYPE})"
        rf"(?P<v>{_VALUE})",
        re.IGNORECASE,
    ),
    # Sample device line: " ip ospf authentication-key 7 0822455D0A16"
    # Sample device line: " ip ospf message-digest-key 1 md5 7 0822455D0A16"
    # Sample device line: "ntp authentication-key 1 md5 104D000A0618 7"
    re.compile(
        rf"(?P<k>\bauthentication-key\s+(?:\d+\s+md5\s+)?{_TYPE})(?P<v>{_VALUE})", re.IGNORECASE
    ),
    re.compile(rf"(?P<k>\bmessage-digest-key\s+\d+\s+md5\s+{_TYPE})(?P<v>{_VALUE})", re.IGNORECASE),
    # Sample device line: "    preshared-key-encrypted $M$Vd$6zYkGvmmgFw=="  (F5 net ipsec ike-peer)
    re.compile(rf"(?P<k>\bpreshared-key(?:-encrypted)?\s+)(?P<v>{_VALUE})", re.IGNORECASE),
    # Sample device line: '        secret = "lab-psk-7f3c9a1e-correct"'       (swanctl.conf)
    # Sample device line: "        secret = 0sFpZAZqEN6Ti9sqt4ZP5EWcqx"
    re.compile(rf"(?P<k>{_S}secret\s*=\s*)(?P<v>.*\S)", re.IGNORECASE),
    # ESP keys printed by `ip xfrm state` (without `nokeys`):
    # Sample device line: "\tauth-trunc hmac(sha256) 0x6d1b0f6c9a2e4f1f8d2c3b4a59687766 128"
    # Sample device line: "\tenc cbc(aes) 0x8f1e2d3c4b5a69788796a5b4c3d2e1f0"
    # Sample device line: "\taead rfc4106(gcm(aes)) 0x0123456789abcdef0123456789abcdef01234567 128"
    re.compile(
        r"(?P<k>^\s*(?:enc|auth|auth-trunc|aead|comp)\s+\S+\s+)(?P<v>0x[0-9a-fA-F]+)",
        re.IGNORECASE,
    ),
    # Sample device line: '10.1.1.1 10.2.2.1 : PSK "v+NkxY9LLZvwj4qCC2o/gGrWDF2d21jL"'
    # Sample device line: 'carol : XAUTH "carolpw"'                          (ipsec.secrets)
    re.compile(rf"(?P<k>:\s*(?:PSK|XAUTH|EAP|NTLM|PIN)\s+)(?P<v>{_VALUE})"),
)

# Sample device line: " key-string"   (alone: a public-key block follows, ended by " quit")
_KEY_STRING_BLOCK = re.compile(r"^\s*key-string\s*$", re.IGNORECASE)
# Sample device line: "  quit"
_QUIT = re.compile(r"^\s*quit\s*$", re.IGNORECASE)
# Sample device line: "tacacs server ISE1" / "radius server ISE2"
# Sample device line: "aaa server radius dynamic-author"
_SERVER_BLOCK = re.compile(r"^(?:tacacs|radius)\s+server\b|^aaa\s+server\b", re.IGNORECASE)
# Sample device line: " key 7 0822455D0A16"  (inside a tacacs/radius server block)
# Sample device line: " client 10.0.0.7 server-key 7 0822455D0A16"
_SERVER_KEY = re.compile(
    rf"^(?P<k>\s+(?:.*\s)?(?:pac\s+)?(?:server-)?key\s+{_TYPE})(?P<v>{_VALUE})", re.IGNORECASE
)


# What every expression above needs somewhere in a line (a line without any of these keeps
# every byte, so the expressions are not tried): "key" (isakmp / pre-shared / key-string /
# server / authentication keys, key blocks), "secret", "passw" (password, passwd),
# "snmp-server", "0x" (ESP keys) and ": PSK " (ipsec.secrets).
# Sample device line: "crypto isakmp key cisco123 address 10.2.2.1"   (has a trigger)
# Sample device line: "interface GigabitEthernet0/1"                   (has none)
_TRIGGER = re.compile(
    r"key|secret|passw|snmp-server|0x|:\s*(?:PSK|XAUTH|EAP|NTLM|PIN)\s", re.IGNORECASE
)


@dataclass
class Redactor:
    """Line-by-line redaction with the little state a config needs (blocks)."""

    known: tuple[str, ...] = ()
    _in_key_block: bool = False
    _in_server_block: bool = False
    _known_sorted: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        # Longest first, so a value containing another is masked whole.
        self._known_sorted = sorted({k for k in self.known if len(k) >= 3}, key=len, reverse=True)

    def line(self, line: str) -> str:
        """One line (without its line break), redacted."""
        for value in self._known_sorted:
            if value in line:
                line = line.replace(value, REDACTED)
        if self._in_key_block:
            if _QUIT.match(line):
                self._in_key_block = False
                return line
            stripped = line.lstrip()
            return line[: len(line) - len(stripped)] + REDACTED if stripped else line
        if _KEY_STRING_BLOCK.match(line):
            self._in_key_block = True
            return line
        if line and not line[0].isspace():
            self._in_server_block = bool(_SERVER_BLOCK.match(line))
        if _TRIGGER.search(line) is None:
            return line
        if self._in_server_block and line[:1].isspace():
            line = _SERVER_KEY.sub(_keep_key, line)
        for rule in _LINE_RULES:
            line = rule.sub(_keep_key, line)
        return line


def _keep_key(match: re.Match[str]) -> str:
    return match.group("k") + REDACTED


def redact(text: str, known: Iterable[str] = ()) -> str:
    """``text`` with every secret value replaced by ``<redacted>`` (see module contract)."""
    if not text:
        return text
    values = tuple(v for v in known if v)
    if _TRIGGER.search(text) is None and not any(len(v) >= 3 and v in text for v in values):
        return text  # no line holds anything any expression or known value could match
    redactor = Redactor(known=values)
    parts = re.split(r"(\r\n|\n|\r)", text)
    # parts alternates line, separator, line, separator ... line
    for index in range(0, len(parts), 2):
        parts[index] = redactor.line(parts[index])
    return "".join(parts)


class RedactingSessionLog(SessionLog):
    """A netmiko session log that writes only redacted, complete lines.

    netmiko masks the password and secret itself (``no_log``); this also removes pre-shared
    keys and other secrets printed by ``show running-config``. Text is held until its line is
    complete, so a secret split across two channel reads is still caught; :meth:`close`
    writes the rest.
    """

    def __init__(
        self,
        file_name: str | None = None,
        buffered_io: io.BufferedIOBase | None = None,
        no_log: dict[str, str] | None = None,
        file_mode: str = "write",
    ) -> None:
        super().__init__(
            file_name=file_name, buffered_io=buffered_io, file_mode=file_mode, no_log=no_log
        )
        self._redactor = Redactor(known=tuple((no_log or {}).values()))
        self._pending = ""

    def _write(self, data: str) -> None:
        self._pending += data
        cut = max(self._pending.rfind("\n"), self._pending.rfind("\r"))
        if cut < 0:
            return
        complete, self._pending = self._pending[: cut + 1], self._pending[cut + 1 :]
        super()._write(self._redact_lines(complete))

    def _redact_lines(self, text: str) -> str:
        parts = re.split(r"(\r\n|\n|\r)", text)
        for index in range(0, len(parts), 2):
            parts[index] = self._redactor.line(parts[index])
        return "".join(parts)

    def close(self) -> None:
        self._flush_buffer(final=True)
        if self._pending and self.session_log is not None:
            rest, self._pending = self._pending, ""
            SessionLog._write(self, self._redact_lines(rest))
        super().close()


class RedactingLogFilter(logging.Filter):
    """A logging filter that redacts secrets in records (netmiko logs channel reads at DEBUG).

    netmiko logs each channel read as ``read_channel: <data>``; a secret line can be split
    across two reads. The filter keeps, per thread, the unfinished last line of the previous
    read and, when that line joined with the start of the next read holds a secret, masks the
    start of the next read whole.
    """

    READ_PREFIX = "read_channel: "

    def __init__(self, known: Iterable[str] = ()) -> None:
        super().__init__()
        self.known = tuple(v for v in known if v)
        self._local = threading.local()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken record is the logging module's business
            return True
        cleaned = redact(message, self.known)
        if message.startswith(self.READ_PREFIX):
            body = message[len(self.READ_PREFIX) :]
            tail: str = getattr(self._local, "tail", "")
            first, newline, rest = body.partition("\n")
            if tail and first and redact(tail + first, self.known) != tail + first:
                cleaned = self.READ_PREFIX + REDACTED + newline + redact(rest, self.known)
            last = body.rsplit("\n", 1)[-1]
            self._local.tail = (tail + body if "\n" not in body else last)[-512:]
        if cleaned != message:
            record.msg = cleaned
            record.args = ()
        return True
