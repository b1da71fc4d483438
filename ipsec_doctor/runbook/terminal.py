"""The runbook at a terminal: plain text out, one line in per question.

Contract:
- :class:`TerminalIO` implements :class:`~ipsec_doctor.runbook.io.RunbookIO` on a pair of
  text streams (stdin/stdout by default). Every question is answered with one line; the
  accepted keys are ``n``/Enter (next), ``r`` (re-run), ``w`` or ``o`` (raw output), ``s``
  (skip), ``b`` (back), ``q`` (quit), or the words themselves. An intrusive step runs only on
  ``y``/``yes``; an empty answer there asks again. End of input is quit.
- Nothing is decided here: the text shows what the engine hands over. Colour (bold titles,
  red FOUND) is used only when the output is a terminal and ``NO_COLOR`` is unset.
"""

from __future__ import annotations

import os
import sys
import textwrap
from collections.abc import Sequence
from typing import TextIO

from ipsec_doctor.model.findings import Code, Finding
from ipsec_doctor.runbook.io import (
    Action,
    Conclusion,
    Intro,
    StepPreview,
    StepResult,
)
from ipsec_doctor.runbook.schema import END, Outcome
from ipsec_doctor.runbook.transcript import change_line, command_summary, evidence_lines

KEYS: dict[str, Action] = {
    "": Action.NEXT,
    "n": Action.NEXT,
    "next": Action.NEXT,
    "r": Action.RERUN,
    "rerun": Action.RERUN,
    "re-run": Action.RERUN,
    "w": Action.RAW,
    "o": Action.RAW,
    "raw": Action.RAW,
    "s": Action.SKIP,
    "skip": Action.SKIP,
    "b": Action.BACK,
    "back": Action.BACK,
    "q": Action.QUIT,
    "quit": Action.QUIT,
}
CONFIRM_KEYS: dict[str, Action] = {
    "y": Action.RUN,
    "yes": Action.RUN,
    "s": Action.SKIP,
    "skip": Action.SKIP,
    "n": Action.SKIP,
    "no": Action.SKIP,
    "b": Action.BACK,
    "back": Action.BACK,
    "q": Action.QUIT,
    "quit": Action.QUIT,
}
LABELS: dict[Action, str] = {
    Action.NEXT: "[n]ext",
    Action.RERUN: "[r]e-run",
    Action.RAW: "ra[w] output",
    Action.SKIP: "[s]kip",
    Action.BACK: "[b]ack",
    Action.QUIT: "[q]uit",
}
WIDTH = 100
EXCERPT_LINES = 3
LONG_OUTPUT = 40
INTRUSIVE_LINES = 12


class TerminalIO:
    """:class:`~ipsec_doctor.runbook.io.RunbookIO` for a person at a terminal."""

    def __init__(
        self, out: TextIO | None = None, inp: TextIO | None = None, *, colour: bool | None = None
    ) -> None:
        self.out = out or sys.stdout
        self.inp = inp or sys.stdin
        if colour is None:
            colour = self.out.isatty() and not os.environ.get("NO_COLOR")
        self.colour = colour

    # -- helpers ----------------------------------------------------------------------------------
    def _style(self, text: str, code: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.colour else text

    def _say(self, text: str = "") -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def _wrap(self, text: str, indent: str = "  ") -> None:
        for paragraph in text.strip().split("\n\n"):
            lines = [line.rstrip() for line in paragraph.splitlines()]
            if any(line.startswith((" ", "-", "*")) for line in lines):
                for line in lines:  # pre-formatted: keep it
                    self._say(indent + line)
            else:
                joined = " ".join(line.strip() for line in lines)
                for line in textwrap.wrap(joined, WIDTH - len(indent)) or [""]:
                    self._say(indent + line)
            self._say()

    def _read(self, prompt: str) -> str | None:
        self.out.write(prompt)
        self.out.flush()
        line = self.inp.readline()
        if not line:
            return None
        return line.strip().lower()

    # -- RunbookIO --------------------------------------------------------------------------------
    def show_intro(self, intro: Intro) -> None:
        runbook = intro.runbook
        self._say(self._style(f"ipsec-doctor runbook {runbook.name} — {runbook.title}", "1"))
        self._say(f"Peer {intro.peer} ({intro.mode})")
        self._say("Devices:")
        for device in intro.devices:
            self._say(f"  {device.name} ({device.role} end, {device.platform}): {device.reason}")
        for note in intro.notes:
            self._say(f"  note: {note}")
        keys = "  ".join(LABELS[a] for a in LABELS)
        self._say(f"After each step: {keys}   (Ctrl-C stops safely at any time)")
        if intro.transcript_path:
            self._say(f"Transcript: {intro.transcript_path}")
        self._say()

    def show_step(self, preview: StepPreview) -> None:
        step = preview.step
        title = f"== Step {preview.number}: {step.id} — {step.title} =="
        self._say(self._style(title, "1;36"))
        if step.text:
            self._wrap(step.text)
        if step.intrusive:
            self._say(self._style(f"INTRUSIVE step ({step.action}).", "1;33"))
            if not preview.available:
                self._say(f"  It cannot run here: {preview.unavailable_reason}")
        if preview.planned:
            self._say("Then reads:" if step.intrusive else "Runs:")
            for planned in preview.planned:
                times = f"  (x{planned.samples})" if planned.samples > 1 else ""
                reused = "  (already read)" if planned.reused else ""
                if planned.left_out:
                    reused = f"  (left out: {planned.left_out})"
                self._say(f"  {planned.device}: {planned.command}{times}{reused}")
        self._say()

    def confirm_intrusive(self, preview: StepPreview) -> Action:
        step = preview.step
        self._say(self._style("!! This step changes device state (debug, ping or clear).", "1;33"))
        self._say("Risk:")
        self._wrap(step.risk, indent="  ")
        if preview.intrusive_plan:
            self._say("It will:")
            for line in preview.intrusive_plan:
                self._say(f"  {line}")
            self._say()
        while True:
            answer = self._read("Run this intrusive step? [y]es / [s]kip / [b]ack / [q]uit > ")
            if answer is None:
                return Action.QUIT
            action = CONFIRM_KEYS.get(answer)
            if action is not None:
                return action
            self._say("Type y to run it, s to skip it, b to go back or q to quit.")

    def show_result(self, result: StepResult) -> None:
        failures = [f for f in result.verdict if f.code not in _QUIET]
        evidence = evidence_lines(result.verdict)
        if evidence:
            self._say("Evidence:")
            for line in evidence:
                self._say(f"  {line}")
        elif result.commands:
            self._excerpts(result)
        self._intrusive_output(result)
        outcome = result.outcome
        label = {
            Outcome.FOUND: self._style("FOUND", "1;31"),
            Outcome.CLEAR: self._style("clear", "1;32"),
            Outcome.UNKNOWN: self._style("not judged", "1;33"),
            Outcome.SKIPPED: "skipped",
        }[outcome]
        self._say(f"Verdict: {label}")
        for finding in failures:
            self._finding(finding)
        for finding in result.verdict:
            if finding.code is Code.TUNNEL_HEALTHY:
                self._say(f"  TUNNEL_HEALTHY: {finding.summary}")
            elif finding.code is Code.INSUFFICIENT_DATA:
                self._say(f"  INSUFFICIENT_DATA: {finding.summary}")
        if result.ruled_out:
            self._say(f"  Ruled out: {', '.join(c.value for c in result.ruled_out)}")
        for note in result.notes:
            self._say(f"  note: {note}")
        for change in result.changes:
            self._say(f"  changed: {change_line(change)}")
        if result.others:
            codes = ", ".join(dict.fromkeys(f.code.value for f in result.others))
            self._say(f"  Also seen in what was read so far: {codes}")
        target = result.next_step
        if target:
            self._say(f"Next: {'the conclusion' if target == END else target}")
        self._say()

    def _excerpts(self, result: StepResult) -> None:
        self._say("Read:")
        for line in command_summary(result.commands):
            self._say(f"  {line}")
        shown: set[tuple[str, str]] = set()
        for run in result.commands:
            key = (run.device, run.command)
            if run.outcome != "ok" or run.reused or key in shown or not run.raw.strip():
                continue
            shown.add(key)
            lines = [line for line in run.raw.splitlines() if line.strip()]
            if len(lines) > LONG_OUTPUT:
                continue
            self._say(f"  {run.device} `{run.command}`:")
            for line in lines[:EXCERPT_LINES]:
                self._say(f"    {line.rstrip().expandtabs(4)}")
            if len(lines) > EXCERPT_LINES:
                self._say(f"    ... ({len(lines) - EXCERPT_LINES} more lines: w shows them)")

    def _intrusive_output(self, result: StepResult) -> None:
        for run in result.commands:
            if not run.intrusive:
                continue
            lines = [line for line in run.raw.splitlines() if line.strip()]
            self._say(f"Output of `{run.command}` on {run.device} ({len(lines)} lines):")
            if len(lines) > INTRUSIVE_LINES:  # the end of a negotiation says why it ended
                self._say(f"    ... ({len(lines) - INTRUSIVE_LINES} earlier lines: w shows them)")
            for line in lines[-INTRUSIVE_LINES:]:
                self._say(f"    {line.rstrip().expandtabs(4)}")

    def _finding(self, finding: Finding) -> None:
        self._say(
            f"  {self._style(finding.code.value, '1')} on {finding.device}: {finding.summary}"
        )
        if finding.fix:
            target = f" (on {finding.fix_device})" if finding.fix_device else ""
            self._say(f"  Fix{target}:")
            for line in finding.fix.rstrip().splitlines():
                self._say(f"    {line}")

    def show_raw(self, result: StepResult) -> None:
        if not result.commands:
            self._say("(this step ran no command)")
        for run in result.commands:
            header = f"--- {run.device}: {run.command} (sample {run.sample}, {run.outcome})"
            if run.reused:
                header += " [read at an earlier step]"
            self._say(header + " ---")
            if run.error:
                self._say(f"  {run.error}")
            self._say(run.raw.rstrip() or "(no output)")
        self._say()

    def ask(self, result: StepResult, choices: Sequence[Action]) -> Action:
        labels = " ".join(LABELS[a] for a in choices if a in LABELS)
        while True:
            answer = self._read(f"{labels} > ")
            if answer is None:
                return Action.QUIT
            action = KEYS.get(answer)
            if action is not None and action in choices:
                return action
            self._say(f"Unknown key {answer!r}: {labels}")

    def show_conclusion(self, conclusion: Conclusion) -> None:
        self._say(self._style(f"== Conclusion ({conclusion.ended}) ==", "1;36"))
        if conclusion.message:
            self._say(conclusion.message)
        root = conclusion.root_cause
        if root is not None:
            self._say(f"Root cause: {self._style(root.code.value, '1;31')} on {root.device}")
            self._say(f"  {root.summary}")
            for line in evidence_lines([root], limit=6):
                self._say(f"  {line}")
            if root.fix:
                target = f" (on {root.fix_device})" if root.fix_device else ""
                self._say(f"Fix{target}:")
                for line in root.fix.rstrip().splitlines():
                    self._say(f"    {line}")
            others = [
                f
                for f in conclusion.findings
                if f is not root and f.code not in (Code.INSUFFICIENT_DATA, Code.TUNNEL_HEALTHY)
            ]
            for finding in others:
                self._say(f"Also: {finding.code.value} on {finding.device}: {finding.summary}")
        elif any(f.code is Code.TUNNEL_HEALTHY for f in conclusion.findings):
            self._say("The tunnel is healthy: no failure found in what was read.")
        else:
            self._say("No failure found in what was read.")
        if root is None:
            for finding in conclusion.findings:
                if finding.code not in (Code.INSUFFICIENT_DATA, Code.TUNNEL_HEALTHY):
                    self._say(f"Also: {finding.code.value} on {finding.device}: {finding.summary}")
        gaps = [f for f in conclusion.findings if f.code is Code.INSUFFICIENT_DATA]
        if gaps:
            self._say("Not judged (data missing):")
            for finding in gaps:
                self._say(f"  {finding.summary}")
        self._say("Changes made on the devices:")
        if not conclusion.changes:
            self._say("  none (only show commands were run)")
        for change in conclusion.changes:
            self._say(f"  {change_line(change)}")
        if conclusion.transcript_path:
            self._say(f"Transcript written to {conclusion.transcript_path}")
        self._say()

    def message(self, text: str) -> None:
        self._say(text)


_QUIET = frozenset({Code.INSUFFICIENT_DATA, Code.TUNNEL_HEALTHY})
