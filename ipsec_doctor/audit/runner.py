"""One audit run: collect every device, store each result as it arrives, pair ends, report.

Contract:
- :func:`run_audit` selects the hosts (:mod:`~ipsec_doctor.audit.filters`), waits a random
  ``jitter``, takes the history lock (overlapping runs are refused), marks runs a killed audit left
  ``running`` as ``interrupted``, opens a run and collects. Devices are split round-robin over
  ``processes`` collector processes, each with its own Nornir over its share of the inventory and
  ``workers / processes`` threads, so the number of concurrent logins never exceeds ``workers``;
  with one process the collection runs in a thread of this one. Where the platform can ``fork`` and
  this process runs no other thread yet, the collectors are forked from it after it loaded what they
  need once (:mod:`~ipsec_doctor.audit.preload`): they start at once, warm, with the inventory
  already in memory. Elsewhere a ``forkserver`` preloads the same and each collector gets its share
  of the inventory pickled. Each device result crosses a queue and is written at once, in its own
  transaction: its tunnels diagnosed from that end alone, problems' durations carried from the
  previous run, SA_FLAPPING across runs, silences applied. A device that fails is stored as
  unreachable with INSUFFICIENT_DATA (warning) on every tunnel known for it (inventory
  ``data.peers``, the history); a collector process that dies fails its remaining devices the same
  way, and the audit finishes.
- After the last device, both ends of each tunnel are paired
  (:func:`~ipsec_doctor.audit.tunnels.pair_ends`) and diagnosed together, and the run's tunnel
  rows are replaced by the paired ones in one transaction; then retention pruning, and the
  run is marked complete. An exception or Ctrl-C marks it ``interrupted`` and keeps what was
  stored. The :class:`~ipsec_doctor.audit.model.AuditReport` compares with each device's
  previous run and carries the trend of the last runs.
- Sampling: by default one sample (``interval=None``: counters are judged on one reading,
  e.g. TUNNEL_HEALTHY needs encaps and decaps above zero); ``interval`` takes a second sample
  of every counter once per device.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import pickle
import queue as queue_module
import random
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from ipaddress import ip_address
from pathlib import Path
from typing import Any, Protocol

from nornir.core import Nornir
from nornir.core.plugins.connections import ConnectionPluginRegister
from nornir.plugins.runners import ThreadedRunner

from ipsec_doctor.audit.changes import (
    PreviousIndex,
    ages,
    apply_silences,
    carry_over,
    compute_changes,
)
from ipsec_doctor.audit.collector import (
    AuditCollectOptions,
    DeviceAudit,
    audit_host,
    failed_device,
)
from ipsec_doctor.audit.filters import declared_endpoints, declared_peers, select_hosts
from ipsec_doctor.audit.flapping import FlapSettings, cross_run_flap, sa_facts
from ipsec_doctor.audit.model import (
    AuditReport,
    DeviceOutcome,
    RunInfo,
    RunStatus,
    Silence,
    TunnelRecord,
)
from ipsec_doctor.audit.store import HistoryStore
from ipsec_doctor.audit.tunnels import FleetEnds, Pairing, TunnelRef, pair_ends
from ipsec_doctor.collect.nornir_collector import CollectOptions, build_nornir, run_on_hosts
from ipsec_doctor.diagnose import Settings, diagnose
from ipsec_doctor.diagnose.engine import order
from ipsec_doctor.errors import UsageError
from ipsec_doctor.model.findings import Code, Severity, Stage, make_finding
from ipsec_doctor.model.state import DeviceState, TunnelView

#: Below this many hosts one collector process is enough.
MIN_HOSTS_PER_PROCESS = 25
#: Collector processes per core (see :func:`auto_processes`).
PROCESSES_PER_CORE = 2
#: Seconds a collector process's thread may hold the GIL before it is asked to hand it over
#: (Python's default is 0.005): with ~100 threads per process (sessions and paramiko's
#: transports), most of them waiting on the network, fewer forced handovers cost less CPU.
COLLECTOR_SWITCH_INTERVAL = 0.05
_POLL = 0.5


@dataclass(frozen=True)
class InventorySource:
    """Where the Nornir inventory comes from (rebuilt in each collector process)."""

    inventory_dir: Path | None = None
    config_file: Path | None = None

    def build(self, workers: int) -> Nornir:
        return build_nornir(self.inventory_dir, self.config_file, max(1, workers))

    def describe(self) -> str:
        if self.config_file is not None:
            return f"nornir config {self.config_file}"
        return f"inventory {self.inventory_dir}"


@dataclass(frozen=True)
class AuditOptions:
    """How one audit runs (CLI options, see docs/audit.md)."""

    filters: tuple[str, ...] = ()
    workers: int = 20
    processes: int | None = None  # None: automatic (cores, and hosts / 25)
    interval: float | None = None  # None: one sample per counter
    connect_timeout: float | None = None
    command_timeout: float | None = None
    jitter: float = 0.0
    retention_days: float | None = 90.0
    flap: FlapSettings = field(default_factory=FlapSettings)
    diagnosis: Settings | None = None
    trend_runs: int = 30


class AuditProgress(Protocol):
    def start(self, total: int) -> None: ...

    def advance(self, outcome: DeviceOutcome) -> None: ...

    def stop(self) -> None: ...


def auto_processes(hosts: int, workers: int) -> int:
    """Collector processes for ``hosts`` devices: two per core, at least 25 hosts each.

    Two per core rather than one: a collector's threads share one interpreter lock, and with
    many sessions per process they spend CPU handing it over (each session has a netmiko thread
    and a paramiko transport thread). Measured with benchmarks/audit_bench.py on 2 cores, 200
    routers and 100 workers: 4 processes used about 12 % less CPU and finished about 9 % sooner
    than 2; 6 or more gained nothing and cost 55 MiB each.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(PROCESSES_PER_CORE * (cores or 1), hosts // MIN_HOSTS_PER_PROCESS, workers))


def collect_options(
    options: AuditOptions, declared: dict[str, tuple[str, ...]]
) -> AuditCollectOptions:
    timeout = options.command_timeout
    return AuditCollectOptions(
        interval=options.interval,
        collect=CollectOptions(
            read_timeout=timeout,
            conn_timeout=options.connect_timeout,
            resync_timeout=min(5.0, timeout) if timeout else 5.0,
        ),
        declared=declared,
        settings=options.diagnosis,
    )


# -- collection: one or more processes, results through a queue --------------------------------


def _collect_in_thread(
    nr: Nornir, hosts: Sequence[str], options: AuditCollectOptions, out: Any, index: int = 0
) -> threading.Thread:
    def work() -> None:
        try:
            run_on_hosts(
                nr, hosts, audit_host, options=options, emit=lambda a: out.put(("device", a))
            )
            out.put(("done", index))
        except BaseException as exc:  # reported to the consumer, which fails the rest
            out.put(("error", (index, f"{type(exc).__name__}: {exc}")))

    thread = threading.Thread(target=work, name=f"audit-collector-{index}", daemon=True)
    thread.start()
    return thread


def _worker_main(
    index: int,
    source: Nornir | InventorySource | bytes,
    hosts: list[str],
    workers: int,
    options: AuditCollectOptions,
    out: Any,
    parent: int,
) -> None:
    """A collector process: its own Nornir over its share of the hosts.

    ``source`` is the parent's Nornir of this share (a forked process has it in memory), the
    parent's inventory of this share pickled (no inventory is read again), or, when that
    could not be pickled, where to read the inventory from.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    sys.setswitchinterval(COLLECTOR_SWITCH_INTERVAL)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    try:
        if isinstance(source, Nornir):
            nr = source.with_runner(ThreadedRunner(workers))
        elif isinstance(source, bytes):
            ConnectionPluginRegister.auto_register()  # what InitNornir would do
            inventory, config = pickle.loads(source)
            nr = Nornir(inventory=inventory, config=config, runner=ThreadedRunner(workers))
        else:
            nr = source.build(workers)
        run_on_hosts(nr, hosts, audit_host, options=options, emit=lambda a: out.put(("device", a)))
        out.put(("done", index))
    except BaseException as exc:
        out.put(("error", (index, f"{type(exc).__name__}: {exc}")))
    finally:
        out.close()
        out.join_thread()


def _share(nr: Nornir, source: InventorySource, hosts: Sequence[str]) -> InventorySource | bytes:
    """The inventory of ``hosts`` for a collector process (pickled when possible)."""
    wanted = set(hosts)
    try:
        return pickle.dumps(
            (nr.filter(filter_func=lambda h: h.name in wanted).inventory, nr.config)
        )
    except Exception:  # an inventory plugin with unpicklable data: the process reads it again
        return source


def _watch_parent(pid: int) -> None:
    """End this collector when the audit that started it is gone (e.g. SIGKILLed)."""
    while True:
        time.sleep(1.0)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            os._exit(3)
        except PermissionError:
            pass


def _can_fork() -> bool:
    """Fork the collectors from this process: only where ``fork`` exists and is the platform's
    usual way (Linux), and while this process runs no other thread (a fork copies a lock
    another thread holds, held for ever)."""
    return (
        sys.platform.startswith("linux")
        and "fork" in multiprocessing.get_all_start_methods()
        and threading.active_count() == 1
    )


def _context(fork: bool) -> Any:
    if fork:
        from ipsec_doctor.audit import preload

        preload.warm()  # once here; every forked collector inherits it
        # What is loaded now lives as long as the collectors: their garbage collections need
        # not walk it (nor touch, and so copy, its memory pages). Unfrozen here once forked.
        gc.collect()
        gc.freeze()
        return multiprocessing.get_context("fork")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["ipsec_doctor.audit.runner", "ipsec_doctor.audit.preload"])
    return ctx


class _Collection:
    """Runs the collectors and yields each DeviceAudit as it arrives.

    A collector process that ends (or fails) before sending any result has its share
    collected by a thread of this process instead; one that ends half way fails the devices
    it did not send.
    """

    def __init__(
        self,
        nr: Nornir,
        source: InventorySource,
        hosts: Sequence[str],
        options: AuditCollectOptions,
        workers: int,
        processes: int,
    ) -> None:
        self.nr = nr
        self.options = options
        self.hosts = list(hosts)
        self.platforms = {h: nr.inventory.hosts[h].platform or "" for h in hosts}
        self.addresses = {h: str(nr.inventory.hosts[h].hostname or "") for h in hosts}
        self.processes: dict[int, Any] = {}
        self.threads: dict[int, threading.Thread] = {}
        self.received: dict[int, int] = {}
        self.notes: list[str] = []
        self.per_process = max(1, workers // max(1, processes))
        if processes <= 1:
            self.queue: Any = queue_module.Queue()
            self.shares = [self.hosts]
            self.threads[0] = _collect_in_thread(nr, self.hosts, options, self.queue)
            return
        fork = _can_fork()
        ctx = _context(fork)
        self.queue = ctx.Queue()
        self.shares = [self.hosts[i::processes] for i in range(processes)]
        try:
            for index, share in enumerate(self.shares):
                wanted = set(share)
                process = ctx.Process(
                    target=_worker_main,
                    args=(
                        index,
                        nr.filter(filter_func=lambda h, w=wanted: h.name in w)
                        if fork
                        else _share(nr, source, share),
                        share,
                        self.per_process,
                        options,
                        self.queue,
                        os.getpid(),
                    ),
                    name=f"ipsec-doctor-audit-{index}",
                    daemon=True,
                )
                process.start()
                self.processes[index] = process
        finally:
            if fork:
                gc.unfreeze()

    def _fallback(self, index: int, pending: set[str], why: str) -> bool:
        """Collect a silent process's share here instead; False when that is not possible."""
        if self.received.get(index) or index in self.threads:
            return False
        share = [h for h in self.shares[index] if h in pending]
        self.notes.append(
            f"collector process {index} stopped before its first device ({why}); its "
            f"{len(share)} devices were collected by the main process"
        )
        nr = self.nr.filter(filter_func=lambda h: h.name in set(share))
        self.threads[index] = _collect_in_thread(nr, share, self.options, self.queue, index)
        return True

    def results(self) -> Iterable[DeviceAudit]:
        pending = set(self.hosts)
        finished: set[int] = set()
        owner = {h: i for i, share in enumerate(self.shares) for h in share}
        while pending:
            try:
                kind, payload = self.queue.get(timeout=_POLL)
            except queue_module.Empty:
                for index, process in self.processes.items():
                    if index in finished or index in self.threads or process.exitcode is None:
                        continue
                    why = f"exit code {process.exitcode}"
                    if not self._fallback(index, pending, why):
                        finished.add(index)
                        yield from self._fail(index, pending, f"collector process ended ({why})")
                for index, thread in self.threads.items():
                    if index not in finished and not thread.is_alive():
                        finished.add(index)
                        yield from self._fail(index, pending, "the collector stopped")
                continue
            if kind == "device":
                index = owner.get(payload.name, 0)
                self.received[index] = self.received.get(index, 0) + 1
                if payload.name in pending:
                    pending.discard(payload.name)
                    yield payload
            elif kind == "done":
                finished.add(int(payload))
                yield from self._fail(int(payload), pending, "not collected")
            elif kind == "error":
                index, message = payload
                if int(index) in self.threads or not self._fallback(int(index), pending, message):
                    finished.add(int(index))
                    yield from self._fail(int(index), pending, f"collector failed: {message}")

    def _fail(self, index: int, pending: set[str], why: str) -> Iterable[DeviceAudit]:
        share = self.shares[index] if index < len(self.shares) else []
        for name in [h for h in share if h in pending]:
            pending.discard(name)
            yield failed_device(name, self.platforms[name], self.addresses[name], f"{name}: {why}")

    def stop(self) -> None:
        for process in self.processes.values():
            if process.is_alive():
                process.terminate()
        for process in self.processes.values():
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
                process.join(timeout=5)


# -- records ------------------------------------------------------------------------------------


def _unreachable_state(name: str, platform: str, error: str) -> DeviceState:
    return DeviceState(name=name, platform=platform, unreachable=error)


def _device_level(name: str, summary: str, *, observed: bool, reason: str) -> TunnelRecord:
    finding = make_finding(
        Code.INSUFFICIENT_DATA,
        device=name,
        peer="",
        summary=summary,
        detail={"reason": reason, "unjudged_stage": Stage.PREREQ.value},
        reference="meta.collection",
        severity=Severity.WARNING,
        stage=Stage.PREREQ,
    )
    return TunnelRecord(device=name, peer="", findings=(finding,), observed=observed)


class _Run:
    """The state of one audit run between the collectors and the store."""

    def __init__(
        self,
        store: HistoryStore,
        run: RunInfo,
        options: AuditOptions,
        declared: dict[str, tuple[str, ...]],
        endpoints: dict[str, tuple[str, ...]],
        silences: Sequence[Silence],
        previous: PreviousIndex,
        previous_addresses: dict[str, tuple[str, ...]],
    ) -> None:
        self.store = store
        self.run = run
        self.options = options
        self.declared = declared
        self.endpoints = endpoints
        self.silences = list(silences)
        self.previous = previous
        self.previous_addresses = previous_addresses
        self.audits: dict[str, DeviceAudit] = {}
        self.stored: dict[str, list[TunnelRecord]] = {}
        self.notes: list[str] = []

    # -- one tunnel record, finished with history, flaps and silences ----------------------
    def finish(
        self,
        record: TunnelRecord,
        state: DeviceState | None,
        platform: str,
        observed_at: datetime,
    ) -> TunnelRecord:
        previous = self.previous.match(record)
        status = record.status
        facts: dict[str, Any] = {}
        if state is not None and record.observed and record.peer:
            facts["sa"] = sa_facts(state, record.peer, observed_at, self.options.flap)
        facts.update(
            carry_over(
                record, previous, self.run.started_at, status, self.options.flap.history_length
            )
        )
        findings = list(record.findings)
        if (
            record.observed
            and record.peer
            and not any(f.code is Code.SA_FLAPPING for f in findings)
        ):
            before = (
                previous.facts.get("sa") if previous is not None and previous.observed else None
            )
            flap = cross_run_flap(
                device=record.device,
                peer=record.peer,
                platform=platform,
                previous=before,
                now=facts.get("sa") or {},
                history=str(facts["history"]),
                state=state,
                settings=self.options.flap,
            )
            if flap is not None:
                findings = order(
                    [f for f in findings if f.code is not Code.TUNNEL_HEALTHY] + [flap]
                )
                record = replace(record, findings=tuple(findings))
                facts.update(
                    carry_over(
                        record,
                        previous,
                        self.run.started_at,
                        status,
                        self.options.flap.history_length,
                    )
                )
        record = replace(record, facts=facts)
        return apply_silences(record, self.silences, self.run.started_at)

    def known_peers(self, name: str) -> list[str]:
        return list(dict.fromkeys([*self.declared.get(name, ()), *self.previous.peers_of(name)]))

    def local_records(self, audit: DeviceAudit) -> list[TunnelRecord]:
        """The device's tunnels diagnosed from its end alone (stored as it arrives)."""
        observed_at = audit.finished_at or datetime.now(UTC)
        if audit.error:
            state = _unreachable_state(audit.name, audit.platform, audit.error)
            peers = self.known_peers(audit.name)
            if not peers:
                record = _device_level(
                    audit.name,
                    f"{audit.name} could not be collected: {audit.error}; no tunnel of it is "
                    "known (inventory data.peers, earlier runs), so none is judged",
                    observed=False,
                    reason=audit.error,
                )
                return [self.finish(record, None, audit.platform, observed_at)]
            out = []
            for peer in peers:
                findings = diagnose(TunnelView(local=state, peer=ip_address(peer)))
                record = TunnelRecord(
                    device=audit.name,
                    peer=peer,
                    findings=tuple(findings),
                    observed=False,
                    sources=("earlier runs / inventory",),
                )
                out.append(self.finish(record, None, audit.platform, observed_at))
            return out
        if not audit.tunnels:
            if not audit.note:
                return []
            record = _device_level(
                audit.name,
                f"{audit.name}: {audit.note}; no tunnel of it is judged",
                observed=True,
                reason=audit.note,
            )
            return [self.finish(record, None, audit.platform, observed_at)]
        return [
            self.finish(
                TunnelRecord(
                    device=audit.name,
                    peer=t.ref.peer,
                    findings=t.findings,
                    local_address=t.ref.local_address,
                    sources=t.ref.sources,
                ),
                t.state,
                audit.platform,
                observed_at,
            )
            for t in audit.tunnels
        ]

    def arrive(self, audit: DeviceAudit) -> DeviceOutcome:
        self.audits[audit.name] = audit
        records = self.local_records(audit)
        outcome = audit.outcome()
        if audit.error:
            outcome = replace(outcome, tunnels=len([r for r in records if r.peer]))
        self.store.store_device(self.run.id, outcome, records)
        self.stored[audit.name] = records
        return outcome

    # -- pairing ----------------------------------------------------------------------------
    def fleet(self) -> FleetEnds:
        ends = FleetEnds()
        for name, audit in self.audits.items():
            addresses = set(self.endpoints.get(name, ()))
            if audit.error:
                ends.tunnels[name] = [TunnelRef(peer=p) for p in self.known_peers(name)]
                addresses.update(self.previous_addresses.get(name, ()))
            else:
                ends.reached.add(name)
                ends.tunnels[name] = [t.ref for t in audit.tunnels]
                addresses.update(audit.addresses)
            ends.addresses[name] = addresses
        return ends

    def paired_record(self, pairing: Pairing) -> TunnelRecord | None:
        device, peer = pairing.local
        local = self.audits[device]
        ref = next((t for t in local.tunnels if t.ref.peer == peer), None)
        observed_at = local.finished_at or datetime.now(UTC)
        if pairing.remote is None:
            return None  # the record stored on arrival stands
        far, toward = pairing.remote
        remote = self.audits.get(far)
        if remote is None:
            return None
        if local.error:
            local_state = _unreachable_state(device, local.platform, local.error)
            findings = diagnose(TunnelView(local=local_state, peer=ip_address(peer)))
            record = TunnelRecord(
                device=device,
                peer=peer,
                remote=far,
                remote_peer=toward,
                paired=True,
                findings=tuple(findings),
                observed=False,
                sources=("earlier runs / inventory",),
            )
            return self.finish(record, None, local.platform, observed_at)
        assert ref is not None
        remote_state = remote.state_for(toward)
        view = TunnelView(
            local=ref.state,
            peer=ip_address(peer),
            remote=remote_state,
            remote_peer=ip_address(toward),
        )
        paired = diagnose(view, self.options.diagnosis)
        if remote.error:  # keep our end's own verdict; add that the far end is unjudged
            blind = [f for f in paired if f.code is Code.INSUFFICIENT_DATA and f.device == far]
            findings = order([*ref.findings, *blind])
        else:
            findings = paired
        record = TunnelRecord(
            device=device,
            peer=peer,
            remote=far,
            remote_peer=toward,
            paired=True,
            findings=tuple(findings),
            local_address=ref.ref.local_address,
            sources=ref.ref.sources,
        )
        return self.finish(record, ref.state, local.platform, observed_at)

    def pair(self) -> list[TunnelRecord]:
        """Pair both ends, replace the run's rows in one transaction; the final records."""
        stored = {r.key: r for records in self.stored.values() for r in records}
        final: dict[tuple[str, str], TunnelRecord] = {}
        consumed: set[tuple[str, str]] = set()
        for pairing in pair_ends(self.fleet()):
            if pairing.note:
                self.notes.append(pairing.note)
            record = self.paired_record(pairing)
            if record is None:
                continue
            final[record.key] = record
            consumed.add(pairing.local)
            if pairing.remote is not None and pairing.remote_listed:
                consumed.add(pairing.remote)
        for key, record in stored.items():
            if key not in consumed and key not in final:
                final[key] = record
        # a device known only as the far end of a tunnel needs no "no tunnel known" row
        known = {r.remote for r in final.values() if r.remote} | {
            r.device for r in final.values() if r.peer
        }
        for key in [k for k in final if not k[1] and k[0] in known]:
            del final[key]
        self.store.replace_tunnels(self.run.id, stored.keys(), list(final.values()))
        return list(final.values())


# -- the run ------------------------------------------------------------------------------------


def _prepare(source: InventorySource, options: AuditOptions) -> tuple[Nornir, list[str]]:
    if options.workers < 1:
        raise UsageError("--workers must be at least 1")
    nr = source.build(options.workers)
    return nr, select_hosts(nr, options.filters)


def run_audit(
    source: InventorySource,
    store: HistoryStore,
    options: AuditOptions,
    *,
    progress: AuditProgress | None = None,
    sleep: Callable[[float], None] = time.sleep,
    rng: Callable[[], float] = random.random,
    tool_version: str = "",
) -> AuditReport:
    """Audit the inventory (see the module contract); returns the report of the run."""
    nr, hosts = _prepare(source, options)
    processes = options.processes or auto_processes(len(hosts), options.workers)
    processes = max(1, min(processes, len(hosts), options.workers))
    fork = processes > 1 and _can_fork()
    if fork:  # what the collectors need, loaded once here before the run: they inherit it
        from ipsec_doctor.audit import preload

        preload.warm()
    if options.jitter > 0:
        sleep(rng() * options.jitter)
    with store.lock():
        stale = store.close_stale_runs()
        run = store.begin_run(
            source=source.describe(),
            filters=options.filters,
            tool_version=tool_version,
            devices_total=len(hosts),
            options={
                "workers": options.workers,
                "processes": options.processes,
                "interval": options.interval,
                "command_timeout": options.command_timeout,
                "connect_timeout": options.connect_timeout,
            },
        )
        previous_run = store.previous_run(run.id)
        baseline = store.baseline_tunnels(run.id)
        previous_addresses = {
            d.name: d.addresses
            for run_id in sorted({r for r, _ in baseline})
            for d in store.devices(run_id)
        }
        state = _Run(
            store,
            run,
            options,
            declared_peers(nr, hosts),
            declared_endpoints(nr, hosts),
            store.silences(now=run.started_at),
            PreviousIndex(record for _, record in baseline),
            previous_addresses,
        )
        if stale:
            state.notes.append(
                f"run(s) {', '.join(map(str, stale))} had been interrupted; the devices they "
                "finished are kept"
            )
        collection: _Collection | None = None
        try:
            collection = _Collection(  # before the progress display starts its thread
                nr,
                source,
                hosts,
                collect_options(options, state.declared),
                options.workers,
                processes,
            )
            if progress is not None:
                progress.start(len(hosts))
            for audit in collection.results():
                outcome = state.arrive(audit)
                if progress is not None:
                    progress.advance(outcome)
            state.notes.extend(collection.notes)
            if progress is not None:
                progress.stop()
                progress = None
            records = state.pair()
        except BaseException:
            store.finish_run(run.id, RunStatus.INTERRUPTED)
            raise
        finally:
            if progress is not None:
                progress.stop()
            if collection is not None:
                collection.stop()
        pruned = 0
        if options.retention_days is not None:
            cutoff = run.started_at - timedelta(days=options.retention_days)
            pruned = store.prune(cutoff, keep=[run.id])
        if pruned:
            state.notes.append(f"{pruned} run(s) older than {options.retention_days:g} days pruned")
        store.finish_run(run.id, RunStatus.COMPLETE)
        finished = store.run(run.id) or run
        reached = {n for n, a in state.audits.items() if not a.error}
        changes = (
            compute_changes(records, state.previous, reached=reached, previous_run=previous_run.id)
            if previous_run is not None
            else None
        )
        return AuditReport(
            run=finished,
            tunnels=tuple(sorted(records, key=TunnelRecord.sort_key)),
            devices=tuple(
                state.audits[h].outcome() if h in state.audits else DeviceOutcome(h) for h in hosts
            ),
            changes=changes,
            ages=ages(records),
            trend=tuple(store.trend(options.trend_runs, up_to=run.id)),
            notes=tuple(dict.fromkeys(state.notes)),
            generated_at=finished.finished_at,
        )


def report_for_run(
    store: HistoryStore, run_id: int | None = None, trend_runs: int = 30
) -> AuditReport:
    """The report of a stored run (the latest when ``run_id`` is None), e.g. to re-render."""
    runs = store.runs(1) if run_id is None else [r for r in [store.run(run_id)] if r]
    if not runs:
        raise UsageError(
            "the history holds no audit run yet"
            if run_id is None
            else f"no audit run {run_id} in the history"
        )
    run = runs[0]
    records = store.tunnels(run.id)
    previous_run = store.previous_run(run.id)
    devices = store.devices(run.id)
    reached = {d.name for d in devices if d.reachable}
    previous = PreviousIndex(record for _, record in store.baseline_tunnels(run.id))
    return AuditReport(
        run=run,
        tunnels=tuple(sorted(records, key=TunnelRecord.sort_key)),
        devices=tuple(devices),
        changes=(
            compute_changes(records, previous, reached=reached, previous_run=previous_run.id)
            if previous_run is not None
            else None
        ),
        ages=ages(records),
        trend=tuple(store.trend(trend_runs, up_to=run.id)),
        generated_at=run.finished_at,
    )


def parse_until(text: str, now: datetime | None = None) -> datetime:
    """A silence's expiry: ``2026-12-31`` (through the end of that day, UTC),
    ``2026-12-31T08:00`` (UTC unless it names a zone) or ``7d`` / ``12h`` / ``30m`` from now."""
    moment = now or datetime.now(UTC)
    value = text.strip()
    units = {"d": 86400, "h": 3600, "m": 60, "w": 7 * 86400}
    if value[:-1].isdigit() and value[-1:].lower() in units:
        return moment + timedelta(seconds=int(value[:-1]) * units[value[-1].lower()])
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(
            f"--until {text!r}: expected a date (2026-12-31), a time (2026-12-31T08:00) or a "
            "duration (7d, 12h)"
        ) from None
    if len(value) == 10:  # a date: through the end of that day
        parsed = parsed + timedelta(days=1)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    if parsed <= moment:
        raise UsageError(f"--until {text}: that is in the past")
    return parsed
