"""Which participants (and so which answers) an analysis counts, and why the rest are left out.

By default only participants with status ``completed`` who are not ``simulated`` and who failed
no attention check count. Flags add incomplete, researcher-excluded, simulated or inattentive
participants back, and ``max_failed_checks`` allows some failed checks: by default the study's own
rule where its ``export_manifest.json`` names one (the server screened participants by it), else
:data:`DEFAULT_MAX_FAILED_CHECKS`; an explicit number wins. A participant left out for several
reasons is counted under the first of: excluded by the researcher, simulated, incomplete,
inattentive.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from analysis.io import PARTICIPANT_KEY, Export
from contracts.vocabulary import DEFAULT_MAX_FAILED_CHECKS

__all__ = ["DEFAULT_MAX_FAILED_CHECKS", "REASONS", "Inclusion", "Selection", "failed_checks",
           "failed_checks_rule", "select"]
REASONS: dict[str, str] = {
    "excluded": "excluded by the researcher (status 'excluded')",
    "simulated": "simulated (bot) participants",
    "incomplete": "did not complete the study (status 'incomplete')",
    "inattentive": "failed more than {max_failed} attention check(s)",
}


@dataclass(frozen=True)
class Selection:
    """The counted participants and answers, plus per-reason counts of what was left out."""

    reason: pd.Series  # per export participant (same index): why left out, '' if counted
    answers: pd.DataFrame
    participants: pd.DataFrame
    left_out: pd.DataFrame  # one row per reason: reason, description, participants, answers
    total_participants: int
    total_answers: int
    counted_simulated: int  # counted participants who are bots (only with include_simulated)
    counted_simulated_answers: int
    max_failed_checks: int = DEFAULT_MAX_FAILED_CHECKS  # the rule applied
    max_failed_rule: str = "the analysis default"  # where it came from (failed_checks_rule)

    def warnings(self) -> tuple[str, ...]:
        """Say plainly when bots were counted: their numbers describe a policy, not people."""
        counted = len(self.participants)
        if not self.counted_simulated:
            return ()
        if self.counted_simulated == counted:
            return (f"every counted participant is simulated (all {counted} are bots): the "
                    "results describe the bots' policy, not people",)
        return (f"{self.counted_simulated} of the {counted} counted participants are simulated "
                "(bots)",)


def failed_checks(export: Export) -> pd.Series:
    """Number of failed attention checks of every participant, in the order of participants."""
    failed = export.checks.loc[~export.checks["passed"]].groupby(
        PARTICIPANT_KEY, observed=True).size()
    keys = pd.MultiIndex.from_frame(export.participants[PARTICIPANT_KEY])
    return pd.Series(failed.reindex(keys, fill_value=0).to_numpy(),
                     index=export.participants.index)


def failed_checks_rule(export: Export, max_failed_checks: int | None) -> tuple[int, str]:
    """The failed-check limit to apply and where it came from: ``max_failed_checks`` when given,
    else the export manifest's, else :data:`DEFAULT_MAX_FAILED_CHECKS`."""
    if max_failed_checks is not None:
        return max_failed_checks, "--max-failed-checks"
    if export.max_failed_checks is not None:
        return export.max_failed_checks, "the study's rule (export_manifest.json)"
    return DEFAULT_MAX_FAILED_CHECKS, "the analysis default"


def select(export: Export, include_incomplete: bool = False, include_excluded: bool = False,
           include_simulated: bool = False, keep_inattentive: bool = False,
           max_failed_checks: int | None = None) -> Selection:
    """Apply the inclusion rules to an export and count what each rule left out
    (``max_failed_checks`` None: :func:`failed_checks_rule`'s default)."""
    max_failed_checks, rule = failed_checks_rule(export, max_failed_checks)
    people = export.participants
    reason = pd.Series("", index=people.index)
    inattentive = (failed_checks(export) > max_failed_checks) & (not keep_inattentive)
    rules = [
        ("inattentive", inattentive),
        ("incomplete", (people["status"] == "incomplete") & (not include_incomplete)),
        ("simulated", people["simulated"] & (not include_simulated)),
        ("excluded", (people["status"] == "excluded") & (not include_excluded)),
    ]
    for name, applies in rules:  # later rules win, so the order above is reversed precedence
        reason = reason.mask(applies, name)
    keyed = people[PARTICIPANT_KEY].assign(reason=reason.to_numpy(),
                                           simulated=people["simulated"].to_numpy())
    per_answer = export.answers[PARTICIPANT_KEY].merge(keyed, how="left", on=PARTICIPANT_KEY)
    answer_reason = per_answer["reason"].to_numpy()
    counted_bot = (reason == "") & people["simulated"]
    rows = []
    for name, description in REASONS.items():
        rows.append({"reason": name,
                     "description": description.format(max_failed=max_failed_checks),
                     "participants": int((reason == name).sum()),
                     "answers": int((answer_reason == name).sum())})
    return Selection(
        reason=reason,
        answers=export.answers.loc[answer_reason == ""].reset_index(drop=True),
        participants=people.loc[reason == ""].reset_index(drop=True),
        left_out=pd.DataFrame(rows),
        total_participants=len(people),
        total_answers=len(export.answers),
        counted_simulated=int(counted_bot.sum()),
        counted_simulated_answers=int(((answer_reason == "") & per_answer["simulated"].eq(True)).sum()),
        max_failed_checks=max_failed_checks,
        max_failed_rule=rule,
    )


@dataclass(frozen=True)
class Inclusion:
    """Who counts: the rules of :func:`select`, as the options of every report carry them."""

    include_incomplete: bool = False
    include_excluded: bool = False
    include_simulated: bool = False
    keep_inattentive: bool = False
    max_failed_checks: int | None = None  # None: the export manifest's rule, else the default

    def select(self, export: Export) -> Selection:
        """:func:`select` of ``export`` with these rules."""
        return select(export, self.include_incomplete, self.include_excluded,
                      self.include_simulated, self.keep_inattentive, self.max_failed_checks)
