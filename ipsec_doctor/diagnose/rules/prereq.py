"""Stage ``prereq``: IKE is switched on and has a policy to offer."""

from __future__ import annotations

from ipsec_doctor.diagnose.compare import effective_policies
from ipsec_doctor.diagnose.context import End, Tunnel
from ipsec_doctor.diagnose.fixes import render, term
from ipsec_doctor.model.events import Event
from ipsec_doctor.model.findings import Code, Finding
from ipsec_doctor.model.state import Evidence, IkePolicy

#: What NO_ISAKMP_POLICY recommends when the other end is not there to copy from.
RECOMMENDED_POLICY = IkePolicy(
    priority=10,
    encryption="aes-256",
    hash="sha256",
    authentication="pre-share",
    dh_group=14,
    lifetime_seconds=86400,
)


def _isakmp_off_in_log(end: End) -> list[Evidence]:
    """ISAKMP_OFF messages not followed by an ISAKMP_ON (log order is time order)."""
    last_off = last_on = -1
    for index, event in enumerate(end.recent):
        if event.event == Event.ISAKMP_OFF:
            last_off = index
        elif event.event == Event.ISAKMP_ON:
            last_on = index
    if last_off < 0 or last_on > last_off:
        return []
    return end.event_evidence(Event.ISAKMP_OFF)


def _no_map_applied(end: End) -> bool:
    maps = end.state.crypto_maps
    if not end.binds_interfaces or not maps:
        return False
    return not any(end.map_interfaces(e) for e in maps)


def isakmp_disabled(t: Tunnel) -> list[Finding]:
    out: list[Finding] = []
    for end in t.ends:
        if end.ike_established:
            continue  # an established SA proves IKE runs, whatever else says
        cfg = end.state.config
        how: list[str] = []
        evidence: list[Evidence] = []
        if cfg is not None and cfg.isakmp_enabled is False:
            how.append("disabled in the configuration")
            evidence += end.config_evidence("isakmp enable", "isakmp")
        if cfg is not None and cfg.ike_daemon_running is False:
            how.append("the IKE daemon is not running")
            evidence += end.config_evidence("charon", "daemon", "ike")
        logged = _isakmp_off_in_log(end)
        if logged and cfg is not None and cfg.isakmp_enabled is True:
            logged = []  # the configuration is the current truth; the message is history
        if logged and _no_map_applied(end):
            logged = []  # IOS turns ISAKMP off by itself when no crypto map is applied
        if logged:
            how.append("the log says ISAKMP is OFF")
            evidence += logged
        if not how:
            continue
        out.append(
            t.finding(
                Code.ISAKMP_DISABLED,
                end,
                f"{end.name}: IKE/ISAKMP is off ({'; '.join(how)}), so no phase 1 with "
                f"{end.peer_label or 'the peer'} can start",
                evidence=evidence,
                fix=render("ISAKMP_DISABLED", end.platform, device=end.name),
                fix_device=end.name,
                detail={"how": how},
            )
        )
    return out


def policy_fix(platform: str, policy: IkePolicy, priority: int | None = None) -> dict[str, str]:
    """Placeholder values describing ``policy`` in ``platform``'s words."""
    return {
        "priority": str(priority if priority is not None else policy.priority),
        "encryption": term(platform, "encryption", policy.encryption),
        "hash": term(platform, "hash", policy.hash),
        "authentication": term(platform, "authentication", policy.authentication),
        "group": term(platform, "group", policy.dh_group),
        "lifetime": str(policy.lifetime_seconds or 86400),
    }


def no_isakmp_policy(t: Tunnel) -> list[Finding]:
    out: list[Finding] = []
    for end in t.ends:
        policies = end.state.ike_policies
        if policies is None or end.ike_established:
            continue
        if any(not p.is_default for p in policies):
            continue
        other = t.other(end)
        model = RECOMMENDED_POLICY
        copied = False
        if other is not None and other.state.ike_policies:
            model = effective_policies(other.state.ike_policies)[0]
            copied = True
        what = "only the default protection suites" if policies else "no ISAKMP policy"
        out.append(
            t.finding(
                Code.NO_ISAKMP_POLICY,
                end,
                f"{end.name}: {what} configured, so there is nothing to match the proposal "
                f"of {end.peer_label or 'the peer'}"
                + (f" (the fix copies {other.name}'s policy)" if copied and other else ""),
                evidence=end.evs(p.source for p in policies),
                fix=render(
                    "NO_ISAKMP_POLICY",
                    end.platform,
                    names=t.fix_names(end),
                    **policy_fix(end.platform, model, priority=10),
                    peer=end.peer_label,
                ),
                fix_device=end.name,
                detail={
                    "default_policies": len(policies),
                    "suggested_from": other.name if copied and other else "recommended",
                },
            )
        )
    return out


RULES = [isakmp_disabled, no_isakmp_policy]
