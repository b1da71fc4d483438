"""Redaction of secrets on realistic device lines; session logs and log records."""

from __future__ import annotations

import io
import logging

import pytest

from ipsec_doctor.collect.redaction import (
    REDACTED,
    RedactingLogFilter,
    RedactingSessionLog,
    redact,
)

# (line, the secret that must vanish, the text that must stay)
CASES = [
    ("crypto isakmp key cisco123 address 10.2.2.1", "cisco123", "address 10.2.2.1"),
    ("crypto isakmp key 6 FLgBaJHXdYY_AcHZZMgQ address 10.2.2.1 no-xauth", "FLgBaJHX", "key 6 "),
    ("crypto isakmp key S3cr3t hostname r2.example.net", "S3cr3t", "hostname r2.example.net"),
    (" pre-shared-key address 10.2.2.1 key cisco123", "cisco123", "address 10.2.2.1 key"),
    (" pre-shared-key address 10.2.0.0 255.255.0.0 key 6 Abc", "Abc", "255.255.0.0 key 6"),
    ("  pre-shared-key local 6 LocalKey1", "LocalKey1", "pre-shared-key local 6"),
    ("  pre-shared-key remote RemoteKey2", "RemoteKey2", "pre-shared-key remote"),
    ("  pre-shared-key PlainKey3", "PlainKey3", "pre-shared-key"),
    (" ikev1 pre-shared-key AsaKey4", "AsaKey4", "ikev1 pre-shared-key"),
    (" ikev2 remote-authentication pre-shared-key AsaKey5", "AsaKey5", "remote-authentication"),
    ("  key-string 7 0822455D0A16", "0822455D0A16", "key-string 7"),
    (" standby 1 authentication md5 key-string HsrpKey", "HsrpKey", "standby 1"),
    ("enable secret 9 $9$nhEmQVczB7dqsO$X.HsgL6x1il0Rxk", "$9$nhEm", "enable secret 9"),
    ("enable secret 5 $1$mERr$hx5rVt7rPNoS4wqbXKX7m0", "$1$mERr", "enable secret 5"),
    ("enable secret level 15 5 $1$abcd$efgh", "$1$abcd", "level 15 5"),
    ("enable password 7 0822455D0A16", "0822455D0A16", "enable password 7"),
    ("enable password 8Ry2YjIyt7RRXU24 encrypted", "8Ry2YjIy", "encrypted"),
    ("username admin privilege 15 secret 9 $9$2MJBozw/9R3UsU$abc", "$9$2MJB", "privilege 15"),
    ("username bob password 0 cisco", "cisco", "username bob password 0"),
    ("username vpn password Xyz.123 encrypted privilege 15", "Xyz.123", "privilege 15"),
    ("username bob privilege 15 algorithm-type scrypt secret Plain1", "Plain1", "scrypt"),
    ("passwd 2KFQnbNIdI.2KYOU encrypted", "2KFQnbNI", "passwd"),
    (" password 7 0822455D0A16", "0822455D0A16", " password 7 "),
    (" neighbor 10.0.0.2 password 7 02050D480809", "02050D480809", "neighbor 10.0.0.2"),
    (" ppp chap password 0 ChapPw", "ChapPw", "ppp chap password 0"),
    ("snmp-server community S3cr3tRO RO 10", "S3cr3tRO", " RO 10"),
    ("snmp-server community 0 Pub1ic RW", "Pub1ic", " RW"),
    ("snmp-server host 10.0.0.9 version 2c TrapComm", "TrapComm", "10.0.0.9 version 2c"),
    ("snmp-server host 10.0.0.9 informs version 2c InfComm udp-port 162", "InfComm", "udp-port"),
    ("snmp-server user nms NMS v3 auth sha AuthPass1 priv aes 128 PrivPass1", "AuthPass1", "priv"),
    ("snmp-server user nms NMS v3 auth sha AuthPass1 priv aes 128 PrivPass1", "PrivPass1", "aes"),
    ("tacacs-server key 7 0822455D0A16", "0822455D0A16", "tacacs-server key 7"),
    ("tacacs-server host 10.0.0.5 key TacKey", "TacKey", "10.0.0.5"),
    ("radius-server host 10.0.0.6 auth-port 1812 acct-port 1813 key 7 RadK", "RadK", "1813"),
    ("radius-server key RadiusKey", "RadiusKey", "radius-server key"),
    (" server-private 10.0.0.5 key 7 0822455D0A16", "0822455D0A16", "server-private"),
    (" ip ospf authentication-key 7 0822455D0A16", "0822455D0A16", "ip ospf"),
    (" ip ospf message-digest-key 1 md5 7 0822455D0A16", "0822455D0A16", "md5 7"),
    ("ntp authentication-key 1 md5 104D000A0618 7", "104D000A0618", "md5"),
    ("    preshared-key-encrypted $M$Vd$6zYkGvmmgFw==", "$M$Vd", "preshared-key-encrypted"),
    ('        secret = "lab-psk-7f3c9a1e-correct"', "lab-psk-7f3c", "secret = "),
    ("        secret = 0sFpZAZqEN6Ti9sqt4ZP5EWcqx", "0sFpZAZq", "secret = "),
    ('10.1.1.1 10.2.2.1 : PSK "v+NkxY9LLZvwj4qCC2o/gGrW"', "v+NkxY9L", "10.2.2.1 : PSK"),
    ('carol : XAUTH "carolpw"', "carolpw", "carol : XAUTH"),
    ("\tauth-trunc hmac(sha256) 0x6d1b0f6c9a2e4f1f8d2c3b4a59 128", "0x6d1b0f6c", "hmac(sha256)"),
    ("\tenc cbc(aes) 0x8f1e2d3c4b5a69788796a5b4c3d2e1f0", "0x8f1e2d3c", "\tenc cbc(aes) "),
    ("\taead rfc4106(gcm(aes)) 0x0123456789abcdef01 128", "0x01234567", "rfc4106(gcm(aes))"),
    (
        "%PARSER-5-CFGLOG_LOGGEDCMD: User:admin  logged command:"
        "crypto isakmp key k9z address 1.1.1.1",
        "k9z",
        "logged command:crypto isakmp key",
    ),
]


@pytest.mark.parametrize(("line", "secret", "kept"), CASES)
def test_secret_lines(line: str, secret: str, kept: str) -> None:
    cleaned = redact(line)
    assert secret not in cleaned
    assert kept in cleaned
    assert REDACTED in cleaned
    assert redact(cleaned) == cleaned  # idempotent


@pytest.mark.parametrize(
    "line",
    [
        "crypto isakmp policy 10",
        " authentication pre-share",
        "crypto map VPNMAP 10 ipsec-isakmp",
        " set peer 10.2.2.1",
        "%CRYPTO-6-IKMP_MODE_FAILURE: Processing of Main mode failed with peer at 10.2.2.1",
        "password required, but none set",
        "    #pkts encaps: 10, #pkts encrypt: 10, #pkts digest: 10",
        "        local {",
        "            auth = psk",
        "interface GigabitEthernet0/1",
        " key chain KC",
    ],
)
def test_ordinary_lines_untouched(line: str) -> None:
    assert redact(line) == line


RUNNING_CONFIG = """\
hostname R1
!
enable secret 9 $9$nhEmQVczB7dqsO$X.HsgL6x1il0RxkOSSvyQYwucySCt7q
!
username admin privilege 15 password 0 AdminPw99
!
crypto isakmp policy 10
 encr aes 256
 authentication pre-share
crypto isakmp key Psk-To-R2 address 10.2.2.1
!
crypto keyring KR
  pre-shared-key address 10.3.3.1 key Psk-To-R3
!
crypto key pubkey-chain rsa
 addressed-key 10.4.4.1
  address 10.4.4.1
  key-string
   30819F30 0D06092A 864886F7 0D010101 05000381 8D003081 89028181 00C5E23B
   55E33B11 D76F11A0 9E5A3A4A
  quit
!
tacacs server ISE1
 address ipv4 10.0.0.5
 key 7 0822455D0A16AB
radius server ISE2
 address ipv4 10.0.0.6 auth-port 1812 acct-port 1813
 key RadPlain77
!
snmp-server community C0mmunity RO
line vty 0 4
 password 7 121A0C0411045D
 transport input ssh
end
"""


def test_whole_running_config() -> None:
    cleaned = redact(RUNNING_CONFIG)
    for secret in (
        "$9$nhEm",
        "AdminPw99",
        "Psk-To-R2",
        "Psk-To-R3",
        "30819F30",
        "55E33B11",
        "0822455D0A16AB",
        "RadPlain77",
        "C0mmunity",
        "121A0C0411045D",
    ):
        assert secret not in cleaned, secret
    assert cleaned.count("\n") == RUNNING_CONFIG.count("\n")  # line numbers stay true
    assert "crypto isakmp key <redacted> address 10.2.2.1" in cleaned
    assert "  quit" in cleaned and " address ipv4 10.0.0.5" in cleaned
    assert " transport input ssh" in cleaned


def test_crlf_and_known_values_kept_in_shape() -> None:
    text = "R1 banner TopSecretPw\r\ncrypto isakmp key k1 address 1.1.1.1\r\n"
    cleaned = redact(text, known=["TopSecretPw"])
    assert cleaned == "R1 banner <redacted>\r\ncrypto isakmp key <redacted> address 1.1.1.1\r\n"


def test_session_log_redacts_across_split_reads() -> None:
    sink = io.BytesIO()
    slog = RedactingSessionLog(buffered_io=sink, no_log={"password": "LoginPw1"})
    slog.open()
    chunks = ("R1#show run\ncrypto isakmp ke", "y Split-Psk-", "99 address 10.2.2.1\nLog", "inPw1")
    for chunk in chunks:
        slog.write(chunk)
    slog.close()
    written = sink.getvalue().decode()
    assert "Split-Psk" not in written and "LoginPw1" not in written
    assert "crypto isakmp key <redacted> address 10.2.2.1\n" in written


def test_log_filter_redacts_records() -> None:
    record = logging.LogRecord(
        "netmiko", logging.DEBUG, __file__, 1, "read_channel: %s", ("secret = abc123",), None
    )
    assert RedactingLogFilter().filter(record)
    assert "abc123" not in record.getMessage()


def test_log_filter_catches_a_secret_split_across_two_reads() -> None:
    log_filter = RedactingLogFilter()
    records = [
        logging.LogRecord("netmiko", logging.DEBUG, __file__, 1, msg, None, None)
        for msg in (
            "read_channel: hostname R1\ncrypto isakmp key Psk-Nev",
            "read_channel: er-Leaks address 10.2.2.1\nend\n",
        )
    ]
    texts = []
    for record in records:
        assert log_filter.filter(record)
        texts.append(record.getMessage())
    joined = "".join(texts)
    assert "Psk-Nev" not in joined and "er-Leaks" not in joined
    assert texts[1] == "read_channel: <redacted>\nend\n"
