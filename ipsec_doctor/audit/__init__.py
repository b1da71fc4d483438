"""ipsec_doctor.audit: the fleet-wide nightly audit with history, change reports and silences.

    audit/model.py      pure data: tunnel records, device outcomes, changes, the AuditReport
    audit/tunnels.py    tunnel enumeration per device and pairing of both ends
    audit/collector.py  the Nornir task of the audit (one session per device, shared outputs)
    audit/runner.py     the audit run: worker processes, results stored as they arrive
    audit/store.py      the SQLite history (WAL, schema versions, lock, retention, silences)
    audit/changes.py    what changed since the previous run; how long problems have lasted
    audit/flapping.py   SA_FLAPPING across runs (premature SA replacement, repeated up/down)
    audit/filters.py    --filter name=/group=/platform=/<data key>= on the Nornir inventory

This ``__init__`` imports nothing so that renderers can import :mod:`ipsec_doctor.audit.model`
without pulling in Nornir or netmiko.
"""
