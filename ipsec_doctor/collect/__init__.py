"""ipsec_doctor.collect: the only layer that talks to devices (Nornir + netmiko) or reads folders.

Modules (import them directly; this package imports nothing, so ``import ipsec_doctor.collect``
stays cheap and free of netmiko):

- :mod:`.base`: the ``CommandRunner`` and ``Clock`` protocols, ``ProgressEvent``, and the
  ``CollectionError`` subclasses a runner raises.
- :mod:`.plan_runner`: ``run_plan`` - one platform plan against one runner (sampling on the
  injected clock, derived variables, one outcome per command); ``plan_info(platform)``.
- :mod:`.nornir_collector`: ``build_nornir``, ``collect_devices`` (live, parallel),
  ``CollectOptions``.
- :mod:`.file_collector`: ``collect_folder`` (offline, the same plan runner over files).
- :mod:`.capture_store`: ``save_captures`` / ``load_captures`` (the capture-folder format).
- :mod:`.discovery`: ``discover`` / ``discover_in_folder`` - which devices to check for a
  peer, and why.
- :mod:`.netmiko_errors`: netmiko/paramiko exceptions translated in one place.
- :mod:`.redaction`: secrets removed from every text before it is stored or logged.
"""
