"""The optional adaptive design (issue 28): balanced studies plan as before; an adaptive study gives
newcomers more questions of the unsettled comparisons, stores each question's probability, exports the
weight 1/(K·p) that the dashboard's weighted shares use; settings, migration and backup."""

from __future__ import annotations

import csv
import io
import json
import math
import random
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.db.migrations.executor import MigrationExecutor
from study_helpers import researcher_client
from usefulness_helpers import usefulness_study

from analysis.comparisons import comparison_numbers
from analysis.io import load_export
from analysis.selection import select
from contracts.adaptive import DEFAULT_MIN_SHARE, adaptive_probabilities, design_weight
from contracts.columns import DESIGN_WEIGHT
from contracts.usefulness import DISTINCTION
from contracts.vocabulary import ATTENTION_CHECK
from studyapp.console.forms import STUDY_TEXT_FIELDS, StudyTextsForm
from studyapp.aggregates import comparison_sums
from studyapp.console.live_chart import comparison_bars, comparison_title
from studyapp.models import ADAPTIVE_USEFULNESS_PROBLEM, Answer, Participant, SequenceItem, Study
from studyapp.operations.export import write_export
from studyapp.participation.design import (
    PairOption,
    adaptive_per_cell,
    create_sequence,
    design_probabilities,
    pair_exposure,
    pair_options,
    plan_sequence,
)
from studyapp.participation.flow import enrol

pytestmark = pytest.mark.django_db

SETTLED, OPEN = "bla_t_vs_random", "bla_t_vs_cam"  # the synthetic bundle's comparisons: these two and bla_t_vs_l2x_f
QUESTIONS = 12  # 3 comparisons × 2 datasets × 2 questions per cell


def _sequence(participant: Participant) -> list[tuple[int, int, int, int, str]]:
    items = SequenceItem.objects.filter(participant=participant).order_by("position")
    return [(i.position, i.pair_id, i.stimulus_a_id, i.stimulus_b_id, i.expected_choice) for i in items]


def test_a_balanced_study_plans_exactly_as_plan_sequence_and_stores_no_probability(checked_study):
    assert checked_study.design == Study.Design.BALANCED
    options = pair_options(checked_study.pk)
    for token in ("fixed-token-1", "fixed-token-2", "fixed-token-3"):
        exposure = pair_exposure(checked_study.pk, checked_study.release_after_minutes)
        expected = plan_sequence(options, exposure, checked_study.questions_per_cell, random.Random(token),
                                 checked_study.attention_checks)  # fmt: skip
        participant = Participant.objects.create(study=checked_study, token=token)
        with transaction.atomic():
            create_sequence(participant, options)
        assert _sequence(participant) == [
            (p.position, p.pair, p.stimulus_a, p.stimulus_b, p.expected_choice) for p in expected
        ]
        assert len(expected) == QUESTIONS + 2
    assert not SequenceItem.objects.filter(design_probability__isnull=False).exists()


def _adaptive(study: Study, **settings: object) -> Study:
    Study.objects.filter(pk=study.pk).update(design=Study.Design.ADAPTIVE, attention_checks=2, max_failed_checks=2,
                                             **settings)  # fmt: skip
    study.refresh_from_db()
    return study


def _answer_all(participant: Participant, rng: random.Random) -> None:
    """Answer every question: the settled comparison 95 % for bla_t, the others 50/50; checks as instructed."""
    for item in participant.items.select_related("pair", "stimulus_a"):
        if item.expected_choice:
            choice = item.expected_choice
        else:
            first = rng.random() < (0.95 if item.pair.question_type == SETTLED else 0.5)
            choice = "A" if (item.stimulus_a.method == "bla_t") == first else "B"
        Answer.objects.create(item=item, choice=choice, response_ms=1500)


def _questions_per_comparison(participant: Participant) -> Counter[str]:
    asked = participant.items.filter(expected_choice="").values_list("pair__question_type", flat=True)
    return Counter(asked)


@pytest.fixture
def answered_adaptive(study: Study) -> Study:
    """An adaptive study (2 attention checks each) after 20 participants answered everything."""
    _adaptive(study)
    rng = random.Random(5)
    for i in range(20):
        _answer_all(enrol(study, external_id=f"early-{i}"), rng)
    return study


def test_newcomers_get_more_of_the_unsettled_comparison_and_keep_the_floor(answered_adaptive):
    study = answered_adaptive
    comparisons = study.comparisons()
    k = len(comparisons)
    probabilities = design_probabilities(study)
    assert sorted(probabilities) == comparisons and k == 3
    assert math.isclose(sum(probabilities.values()), 1.0)
    # The settled comparison gets less than its balanced share, each 50/50 one more than it (which of
    # the two 50/50 ones gets most depends on the random tokens' sequences).
    assert probabilities[SETTLED] < 1 / k
    assert all(probabilities[SETTLED] < p for c, p in probabilities.items() if c != SETTLED)
    assert min(probabilities.values()) >= DEFAULT_MIN_SHARE / k

    newcomers = [enrol(study, external_id=f"late-{i}") for i in range(12)]
    asked = Counter()
    for person in newcomers:
        counts = _questions_per_comparison(person)
        asked.update(counts)
        assert sum(counts.values()) == QUESTIONS == study.question_count()  # total unchanged
        assert person.sequence_length == QUESTIONS + 2
        for comparison, p in probabilities.items():  # randomised rounding: ⌊T·p⌋ or one more
            assert counts[comparison] in (math.floor(QUESTIONS * p), math.ceil(QUESTIONS * p))
        pairs = list(person.items.filter(expected_choice="").values_list("pair_id", flat=True))
        assert len(pairs) == len(set(pairs))  # no pair twice
        per_dataset = defaultdict(list)
        for (comparison, _), n in Counter(
            person.items.filter(expected_choice="").values_list("pair__question_type", "pair__dataset__key")
        ).items():
            per_dataset[comparison].append(n)
        for comparison, n in counts.items():  # spread evenly over the two datasets
            split = per_dataset[comparison] + [0] * (2 - len(per_dataset[comparison]))
            assert sorted(split) == [n // 2, n - n // 2]
        stored = dict(person.items.filter(expected_choice="").values_list("pair__question_type", "design_probability"))
        assert stored == {c: pytest.approx(probabilities[c]) for c in counts}
        assert not person.items.exclude(expected_choice="").filter(design_probability__isnull=False).exists()
        assert person.items.exclude(expected_choice="").count() == 2
    assert asked[OPEN] > asked[SETTLED]
    for comparison, p in probabilities.items():  # the expectation T·p per newcomer, floor min_share/K included
        assert abs(asked[comparison] / len(newcomers) - QUESTIONS * p) < 1
        assert asked[comparison] >= len(newcomers) * math.floor(QUESTIONS * DEFAULT_MIN_SHARE / k)


def test_probabilities_follow_the_unweighted_sums_of_the_not_excluded(answered_adaptive):
    study = answered_adaptive
    before = design_probabilities(study)
    sums = {s.comparison: s for s in comparison_sums(study, include_simulated=True)}
    assert sums[SETTLED].participants == sum(
        1 for p in study.participants.all() if _questions_per_comparison(p)[SETTLED]
    )
    assert before == adaptive_probabilities(study.comparisons(), sums, DEFAULT_MIN_SHARE, "shares")
    Participant.objects.filter(study=study).update(excluded=True)  # nobody counts: the prior for every comparison
    assert design_probabilities(study) == pytest.approx(dict.fromkeys(study.comparisons(), 1 / 3))


def test_a_comparison_allocated_more_than_its_pairs_hands_the_rest_on():
    cells = {("a_vs_b", "d1"): 1, ("a_vs_b", "d2"): 1, ("a_vs_c", "d1"): 4, ("a_vs_c", "d2"): 4,
             ("b_vs_c", "d1"): 4, ("b_vs_c", "d2"): 4}  # fmt: skip
    options, pk = [], 0
    for cell, size in cells.items():
        for _ in range(size):
            pk += 1
            options.append(PairOption(pk=pk, cell=cell, image=(cell[1], f"i{pk}"), stimuli=(2 * pk, 2 * pk + 1)))
    probabilities = {"a_vs_b": 0.8, "a_vs_c": 0.15, "b_vs_c": 0.05}
    need = adaptive_per_cell(options, probabilities, 3, random.Random(0))  # 1 + 1 + 3·4 = 14 questions
    assert sum(need.values()) == 14 and all(need[cell] <= size for cell, size in cells.items())
    assert need[("a_vs_b", "d1")] == need[("a_vs_b", "d2")] == 1  # both of its pairs, the rest handed on
    per_comparison = Counter()
    for (comparison, _), n in need.items():
        per_comparison[comparison] += n
    assert per_comparison["a_vs_c"] >= per_comparison["b_vs_c"]  # the likelier one takes the rest first
    planned = plan_sequence(options, {}, need, random.Random(0))
    assert len(planned) == 14 and len({item.pair for item in planned}) == 14


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_export_weights_are_one_over_k_p_and_the_weighted_share_matches_the_dashboard(answered_adaptive, tmp_path):
    study = answered_adaptive
    write_export(study, tmp_path)
    rows = _read(tmp_path / "answers.csv")
    assert len(rows) == 20 * (QUESTIONS + 2)
    k = len(study.comparisons())
    items = {(i.participant.public_id, i.position): i for i in SequenceItem.objects.select_related("participant")}
    for row in rows:
        item = items[(row["participant"], int(row["position"]))]
        if row["question_type"] == ATTENTION_CHECK:
            assert row[DESIGN_WEIGHT] == "1" and item.design_probability is None
        else:
            assert float(row[DESIGN_WEIGHT]) == pytest.approx(design_weight(item.design_probability, k), rel=1e-12)
            assert float(row[DESIGN_WEIGHT]) == pytest.approx(1 / (3 * item.design_probability), rel=1e-12)
    weights = {float(r[DESIGN_WEIGHT]) for r in rows if r["question_type"] == SETTLED}
    assert len(weights) > 1 and 1.0 in weights  # the first participant had the prior (p = 1/K), then it moved

    manifest = json.loads((tmp_path / "export_manifest.json").read_text())
    assert (manifest["design"], manifest["adaptive_objective"], manifest["adaptive_min_share"]) == (
        "adaptive", "shares", DEFAULT_MIN_SHARE)
    assert manifest["max_failed_checks"] == study.max_failed_checks == 2

    weighted, total = Counter(), Counter()
    for row in rows:
        if row["question_type"] != ATTENTION_CHECK:
            total[row["question_type"]] += float(row[DESIGN_WEIGHT])
            weighted[row["question_type"]] += float(row[DESIGN_WEIGHT]) * (row["result"] == "method_1")
    bars = {bar.title: bar for bar in comparison_bars(study)}
    assert len(bars) == len(total) == 3
    for comparison in total:
        bar = bars[" vs ".join(comparison_title(comparison))]
        assert bar.segments[0].percent == pytest.approx(100 * weighted[comparison] / total[comparison], rel=1e-9)
        assert bar.answers == sum(1 for r in rows if r["question_type"] == comparison)  # counts stay answers
    # The analysis reads the same weights from the export: its weighted share is the dashboard's.
    export = load_export(tmp_path / "answers.csv", tmp_path / "participants.csv")
    numbers = comparison_numbers(select(export, include_incomplete=True).answers, n_boot=50)
    pooled = numbers[numbers["dataset"] == "all"].set_index("question_type")["method_1_pct"]
    for comparison in total:
        assert pooled[comparison] == pytest.approx(bars[" vs ".join(comparison_title(comparison))].segments[0].percent,
                                                   rel=1e-9)  # fmt: skip
    # Weighting moves the settled comparison's share, unless its answers were unanimous (about 1 run in
    # 20 at 95 %: the sequences follow random tokens), where every weighting gives the same share.
    unweighted = {s.comparison: s for s in comparison_sums(study)}[SETTLED]
    unanimous = unweighted.method_1 in (0, unweighted.answers)
    same = bars[" vs ".join(comparison_title(SETTLED))].segments[0].percent == pytest.approx(
        100 * unweighted.method_1 / unweighted.answers, rel=1e-9)
    assert same == unanimous


def test_the_dashboard_shows_the_design_and_the_current_probabilities(answered_adaptive):
    study = answered_adaptive
    page = researcher_client("ada", study).get(f"/research/{study.slug}/").content.decode()
    assert 'data-design="adaptive"' in page and "adaptive (shares, minimum share 0.5)" in page
    for comparison, p in design_probabilities(study).items():
        assert f'data-comparison-probability="{comparison}"' in page
        assert f"{100 * p:.1f}&nbsp;%" in page
    assert "Shares weighted by the adaptive design" in page


def test_a_balanced_export_weighs_every_answer_one(checked_study, tmp_path):
    person = enrol(checked_study)
    _answer_all(person, random.Random(1))
    write_export(checked_study, tmp_path)
    rows = _read(tmp_path / "answers.csv")
    assert len(rows) == QUESTIONS + 2 and {r[DESIGN_WEIGHT] for r in rows} == {"1"}
    manifest = json.loads((tmp_path / "export_manifest.json").read_text())
    assert manifest["design"] == "balanced" and manifest["max_failed_checks"] == 2


def _form_data(study: Study, **changes: object) -> dict[str, object]:
    data = {name: getattr(study, name) for name in STUDY_TEXT_FIELDS}
    data = {name: ("" if value is None else value) for name, value in data.items()}
    if not data["allow_browser_language"]:
        del data["allow_browser_language"]
    return {**data, **changes}


def test_the_settings_form_refuses_a_min_share_outside_0_1_and_adaptive_usefulness(study, tmp_path, media_root):
    form = StudyTextsForm(_form_data(study, design="adaptive", adaptive_min_share="1.5"), instance=study)
    assert not form.is_valid()
    assert list(form.errors) == ["adaptive_min_share"]
    assert form.errors["adaptive_min_share"] == ["Ensure this value is less than or equal to 1.0."]
    good = StudyTextsForm(_form_data(study, design="adaptive", adaptive_objective="ranking", adaptive_min_share="0.25"),
                          instance=study)  # fmt: skip
    assert good.is_valid(), good.errors
    good.save()
    study.refresh_from_db()
    assert (study.design, study.adaptive_objective, study.adaptive_min_share) == ("adaptive", "ranking", 0.25)

    useful = usefulness_study(tmp_path, DISTINCTION)
    form = StudyTextsForm(_form_data(useful, design="adaptive"), instance=useful)
    assert not form.is_valid()
    assert dict(form.errors) == {"design": [ADAPTIVE_USEFULNESS_PROBLEM]}
    useful.refresh_from_db()  # the refused form left its values on the instance
    balanced = StudyTextsForm(_form_data(useful), instance=useful)
    assert balanced.is_valid(), balanced.errors


def test_the_database_refuses_a_min_share_outside_0_1(study):
    from django.db import IntegrityError

    with pytest.raises(IntegrityError), transaction.atomic():
        Study.objects.filter(pk=study.pk).update(adaptive_min_share=1.5)


def test_backup_and_restore_carry_the_design_and_the_stored_probabilities(answered_adaptive, tmp_path):
    study = answered_adaptive
    Study.objects.filter(pk=study.pk).update(adaptive_objective="ranking", adaptive_min_share=0.3)
    write_export(study, tmp_path / "before")
    probabilities = dict(SequenceItem.objects.values_list("pk", "design_probability"))
    backup = tmp_path / "study.tar"
    call_command("backup_study_data", "--out", str(backup), stdout=io.StringIO())
    call_command("restore_study_data", str(backup), "--replace", stdout=io.StringIO())
    restored = Study.objects.get(slug=study.slug)
    assert (restored.design, restored.adaptive_objective, restored.adaptive_min_share) == ("adaptive", "ranking", 0.3)
    assert dict(SequenceItem.objects.values_list("pk", "design_probability")) == probabilities
    write_export(restored, tmp_path / "after")
    assert (tmp_path / "after" / "answers.csv").read_bytes() == (tmp_path / "before" / "answers.csv").read_bytes()
    before = {b.title: b.segments[0].percent for b in comparison_bars(study)}
    assert {b.title: b.segments[0].percent for b in comparison_bars(restored)} == pytest.approx(before)


@pytest.mark.django_db(transaction=True)
def test_migration_0009_gives_existing_studies_the_balanced_design():
    executor = MigrationExecutor(connection)
    before, after = [("studyapp", "0008_recruitment")], [("studyapp", "0009_adaptive_design")]
    executor.migrate(before)
    old = executor.loader.project_state(before).apps.get_model("studyapp", "Study")
    old.objects.create(slug="old", title="Old study")
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(after)
    study = Study.objects.get(slug="old")
    assert (study.design, study.adaptive_objective, study.adaptive_min_share) == ("balanced", "shares", 0.5)
    assert SequenceItem._meta.get_field("design_probability").null
