"""A runbook session over SSH: Nornir inventory, netmiko sessions, intrusive steps.

Contract: :func:`nornir_session` chooses the devices for ``peer`` like ``check`` does
(:func:`~ipsec_doctor.collect.discovery.discover`), and returns a
:class:`~ipsec_doctor.runbook.session.PipelineSession` whose runners are
:class:`~ipsec_doctor.collect.nornir_collector.NetmikoCommandRunner` sessions, opened on first
use and kept open until :meth:`PipelineSession.close`, and whose intrusive steps go through
:class:`~ipsec_doctor.runbook.intrusive.IntrusiveSteps` on those same sessions (one found dead
before an intrusive action is reopened first; one that drops during it is reopened to undo).
A host whose inventory ``production`` (host, group or defaults) is true is refused intrusive
steps unless ``allow_intrusive``.
"""

from __future__ import annotations

from typing import Any

from nornir.core import Nornir

from ipsec_doctor.collect.audit_log import AuditLog
from ipsec_doctor.collect.discovery import discover
from ipsec_doctor.collect.intrusive import production_flag
from ipsec_doctor.collect.nornir_collector import (
    CollectOptions,
    NetmikoCommandRunner,
    host_settings,
)
from ipsec_doctor.runbook.intrusive import IntrusiveSteps
from ipsec_doctor.runbook.io import DeviceInfo
from ipsec_doctor.runbook.session import End, PipelineSession, make_end


def nornir_session(
    nr: Nornir,
    peer: str,
    *,
    device: str | None = None,
    options: CollectOptions | None = None,
    interval: float | None = 5.0,
    mode: str = "live over SSH",
    allow_intrusive: bool = False,
    audit: AuditLog | None = None,
    max_debug_seconds: float | None = None,
    poll_interval: float = 2.0,
) -> PipelineSession:
    """The session of one runbook run over ``nr`` (see the module contract)."""
    options = options or CollectOptions()
    discovery = discover(nr, peer, device=device, options=options)
    runners: dict[str, NetmikoCommandRunner] = {}
    ends: list[End] = []
    for chosen in discovery.chosen:
        host = nr.inventory.hosts[chosen.device]
        settings = host_settings(host, options)
        info = DeviceInfo(chosen.device, chosen.role, chosen.peer, settings.platform, chosen.reason)
        ends.append(make_end(info, host=str(host.hostname or ""), secrets=settings.known))

    def opener(end: End) -> NetmikoCommandRunner:
        host = nr.inventory.hosts[end.name]
        runner = NetmikoCommandRunner(host, nr.config, host_settings(host, options), options)
        runner.open()
        end.capture.hostname = runner.prompt.rstrip("#>$% ").strip()
        runners[end.name] = runner
        return runner

    def closer(end: End) -> None:
        runner = runners.pop(end.name, None)
        if runner is not None:
            runner.close()

    session = PipelineSession(discovery, ends, opener, closer=closer, mode=mode, interval=interval)

    def connect(end: End) -> Any:
        session.runner_for(end)
        runner = runners[end.name]
        try:
            alive = bool(runner.connection.is_alive())
        except Exception:  # no connection object any more: open a new one
            alive = False
        if not alive:  # the router's exec-timeout may have closed it while the person read
            runner.open()
        return runner.connection

    def reconnect(end: End) -> Any:
        runner = runners.get(end.name)
        if runner is None:
            return connect(end)
        runner.open()
        return runner.connection

    production = {
        name: production_flag({"production": host.get("production")})
        for name, host in nr.inventory.hosts.items()
    }
    session.intrusive = IntrusiveSteps(
        connect,
        reconnect=reconnect,
        production=production,
        allow_intrusive=allow_intrusive,
        audit=audit,
        max_debug_seconds=max_debug_seconds,
        poll_interval=poll_interval,
    )
    return session
