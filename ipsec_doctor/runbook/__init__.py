"""ipsec_doctor.runbook: the troubleshooting strategy as an interactive, recorded runbook.

Module map (docs/runbook.md has the user's view and the file format):

- :mod:`~ipsec_doctor.runbook.schema` -- runbook files: :class:`Runbook` / :class:`Step`, the
  validating loader (every error with file and line), outcomes and the next-step lookup.
- :mod:`~ipsec_doctor.runbook.engine` -- :class:`RunbookEngine` walks a runbook over a
  session through an IO protocol; :func:`judge` is the verdict of one step.
- :mod:`~ipsec_doctor.runbook.session` -- :class:`PipelineSession`: open runners and growing
  captures per device, collection through the plan runner, diagnosis through
  ``workflow.flow.diagnose_captures``; :func:`folder_session` for capture folders.
- :mod:`~ipsec_doctor.runbook.live` -- :func:`nornir_session` over SSH (Nornir + netmiko).
- :mod:`~ipsec_doctor.runbook.intrusive` -- debug, ping and clear steps over
  ``collect.intrusive``.
- :mod:`~ipsec_doctor.runbook.io`, :mod:`~ipsec_doctor.runbook.terminal`,
  :mod:`~ipsec_doctor.runbook.transcript` -- what is shown and asked, the terminal, the
  Markdown transcript.

Layering: the runbook uses workflow, collect, diagnose, parse and model; only the CLI uses it.
"""
