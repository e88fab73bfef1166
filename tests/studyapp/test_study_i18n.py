"""Participant pages in English and German: the catalogue is complete, every page shows German
texts to a German participant (study language or the browser's Accept-Language), the switch keeps
the participant's progress, unknown languages fall back without an error, and the export records
the language each participant used."""
from __future__ import annotations

import csv
import io
from html.parser import HTMLParser
from pathlib import Path

import polib
import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from studyapp.models import DEFAULT_QUESTION_PROMPT, Participant, Study, validate_question_prompt
from studyapp.participation.language import accepted_language, supported
from tests.studyapp.study_helpers import DEMOGRAPHICS, answer_current, form_value, start, take_study

LOCALE = Path(__file__).resolve().parents[2] / "studyapp" / "locale"
GERMAN = {"Starten", "Über Sie", "Weiter", "Anleitung", "Beginnen", "Vielen Dank!", "Sprache"}


class _Texts(HTMLParser):
    """Every visible text and every text attribute (alt, aria-label, title) of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: set[str] = set()
        self.lang = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "html":
            self.lang = values.get("lang") or ""
        self.texts.update(v.strip() for k, v in attrs if k in ("alt", "aria-label", "title") and v and v.strip())

    def handle_data(self, data: str) -> None:
        if data.strip():
            self.texts.add(" ".join(data.split()))


def texts(html: str) -> _Texts:
    parser = _Texts()
    parser.feed(html)
    return parser


def same_in_both(study: Study) -> set[str]:
    """Texts that rightly read the same in English and German: the study's own words, names, keys, numbers."""
    words = {study.title, study.completion_code, "System A", "System B", "A", "B", "E", "·", "English", "Deutsch"}
    words |= set(study.bundle.datasets.values_list("task", flat=True))
    for pair in study.bundle.pairs.values_list("predicted_class", flat=True).distinct():
        words.add(pair)
    return words


def assert_translated(study: Study, english: str, german: str) -> None:
    """The German page has lang="de", and no text of the English page is left untranslated on it."""
    en, de = texts(english), texts(german)
    assert (en.lang, de.lang) == ("en", "de")
    numbers = {t for t in en.texts if t.replace(" ", "").isdigit()}
    left = (en.texts & de.texts) - same_in_both(study) - numbers
    assert not left, f"untranslated on the German page: {sorted(left)}"


def both(client: Client, participant: Participant, url: str, method: str = "get", data: dict | None = None):
    """The page at ``url`` for this participant in English, then in German (same state, same request)."""
    pages = []
    for code in ("en", "de"):
        Participant.objects.filter(pk=participant.pk).update(language=code)
        response = getattr(client, method)(url, data or {})
        assert response.status_code in (200, 400), (url, response.status_code)
        assert response["Content-Language"] == code
        pages.append(response.content.decode())
    return pages


def test_the_german_catalogue_is_complete_and_compiled():
    po = polib.pofile(str(LOCALE / "de" / "LC_MESSAGES" / "django.po"))
    assert po.percent_translated() == 100
    assert not po.untranslated_entries() and not po.fuzzy_entries() and not po.obsolete_entries()
    mo = polib.mofile(str(LOCALE / "de" / "LC_MESSAGES" / "django.mo"))
    compiled = {(e.msgid, e.msgstr, tuple(sorted(e.msgstr_plural.items()))) for e in mo if e.msgid}
    source = {(e.msgid, e.msgstr, tuple(sorted(e.msgstr_plural.items()))) for e in po.translated_entries()}
    assert compiled == source, "django.mo is out of date: run `manage.py compilemessages -l de` in studyapp/"


def test_the_german_default_prompt_keeps_its_placeholders():
    po = polib.pofile(str(LOCALE / "de" / "LC_MESSAGES" / "django.po"))
    german = po.find(DEFAULT_QUESTION_PROMPT).msgstr
    validate_question_prompt(german)
    assert "{task}" in german and "{predicted_class}" in german


@pytest.mark.parametrize(("header", "expected"), [
    ("de-AT,de;q=0.9,en;q=0.8", "de"),
    ("fr-FR, en;q=0.5, de;q=0.7", "de"),
    ("en-GB,en;q=0.9", "en"),
    ("fr, it;q=0.5", None),
    ("de;q=0, en;q=0.1", "en"),
    ("*", None),
    ("", None),
    ("de;q=abc, !!!, " + "x" * 400, None),
])  # fmt: skip
def test_accept_language_picks_the_best_supported_language(header, expected):
    assert accepted_language(header) == expected


def test_supported_refuses_unknown_and_malformed_codes():
    assert (supported("de-AT"), supported("DE"), supported("en")) == ("de", "de", "en")
    assert supported("xx") is None and supported("") is None and supported("de" * 40) is None
    assert supported("../../etc") is None


def test_a_participant_of_a_german_study_sees_every_page_in_german(client: Client, checked_study: Study, tmp_path):
    """Study language de: consent, about you (with errors), instructions, questions, an attention
    check, an invalid answer, thank-you and the closed page are German; the export says de."""
    study = checked_study
    Study.objects.filter(pk=study.pk).update(language="de")
    study.refresh_from_db()
    consent_page = client.get(study.get_absolute_url(), HTTP_ACCEPT_LANGUAGE="en")  # the study decides
    assert consent_page["Content-Language"] == "de" and texts(consent_page.content.decode()).lang == "de"
    body = consent_page.content.decode()
    assert "Starten" in body and "Ich habe die Informationen oben gelesen" in body
    assert "In dieser Studie geht es darum" in body  # the default consent text, translated
    assert "data-language" not in body  # no switch: the study fixes its language
    refused = client.post(study.get_absolute_url(), {"external_id": ""})
    assert refused.status_code == 400 and "Bitte setzen Sie das Häkchen" in refused.content.decode()

    participant = start(client, study)
    assert participant.language == "de"
    about = reverse("studyapp:demographics", args=[participant.token])
    assert_translated(study, *both(client, participant, about))
    english, german = both(client, participant, about, "post", {"age": "12"})
    assert_translated(study, english, german)
    assert "Dieses Feld ist zwingend erforderlich." in german  # Django's own messages come in German too
    assert client.post(about, DEMOGRAPHICS).status_code == 302

    instructions = reverse("studyapp:instructions", args=[participant.token])
    english, german = both(client, participant, instructions)
    assert_translated(study, english, german)
    assert "Es gibt 14 Fragen." in german and "Sie können mit den Tasten A, B und E antworten." in german
    assert client.post(instructions).status_code == 302

    seen_check = seen_question = False
    for position in range(1, participant.sequence_length + 1):
        url = reverse("studyapp:question", args=[participant.token, position])
        english, german = both(client, participant, url)
        is_check = 'class="prompt instruction"' in german
        if is_check or not seen_question:
            assert_translated(study, english, german)
            assert f"Frage {position} von 14" in german and "Welches System verhält sich vernünftiger?" in german
            if is_check:
                assert "wählen Sie bei dieser Frage <strong>Gleich vernünftig</strong>" in german
            else:
                invalid = both(client, participant, url, "post", {"choice": "C", "shown": form_value(german, "shown")})
                assert_translated(study, *invalid)
                assert "Bitte wählen Sie eine der drei Antworten." in invalid[1]
            seen_check, seen_question = seen_check or is_check, seen_question or not is_check
        answer_current(client, participant, "equal")
    assert seen_check and seen_question

    done = reverse("studyapp:done", args=[participant.token])
    english, german = both(client, participant, done)
    assert_translated(study, english, german)
    assert "Alle Ihre Antworten wurden gespeichert." in german and "Ihr Abschlusscode lautet" in german

    Study.objects.filter(pk=study.pk).update(status=Study.Status.CLOSED)
    closed = Client().get(study.get_absolute_url()).content.decode()
    assert "Diese Studie ist beendet" in closed and texts(closed).lang == "de"

    out = tmp_path / "export"
    call_command("export_responses", "--study", study.slug, "--out", str(out), stdout=io.StringIO())
    with (out / "participants.csv").open(encoding="utf-8") as handle:
        (row,) = list(csv.DictReader(handle))
    assert (row["participant"], row["status"], row["language"]) == (participant.public_id, "completed", "de")


def test_a_study_that_allows_it_follows_the_browser_language(study: Study, tmp_path):
    Study.objects.filter(pk=study.pk).update(allow_browser_language=True)
    german = Client(HTTP_ACCEPT_LANGUAGE="fr-CH, de-AT;q=0.8, en;q=0.5")
    page = german.get(study.get_absolute_url())
    assert page["Content-Language"] == "de" and "Starten" in page.content.decode()
    assert 'data-language="en"' in page.content.decode()  # the switch is offered
    german_participant = take_study(german, study)
    english_participant = take_study(Client(HTTP_ACCEPT_LANGUAGE="en-GB"), study)
    nothing = take_study(Client(), study)  # no header: the study's language
    assert [p.language for p in (german_participant, english_participant, nothing)] == ["de", "en", "en"]

    out = tmp_path / "export"
    call_command("export_responses", "--study", study.slug, "--out", str(out), stdout=io.StringIO())
    with (out / "participants.csv").open(encoding="utf-8") as handle:
        languages = {r["participant"]: r["language"] for r in csv.DictReader(handle)}
    assert languages == {german_participant.public_id: "de", english_participant.public_id: "en",
                         nothing.public_id: "en"}  # fmt: skip


def test_the_browser_language_is_ignored_where_the_study_fixes_its_language(client: Client, study: Study):
    page = client.get(study.get_absolute_url(), HTTP_ACCEPT_LANGUAGE="de")
    assert page["Content-Language"] == "en" and "data-language" not in page.content.decode()
    switched = client.get(study.get_absolute_url() + "?lang=de")
    assert switched.status_code == 302 and switched["Location"] == study.get_absolute_url()
    assert client.get(study.get_absolute_url())["Content-Language"] == "en"
    participant = start(client, study)
    assert participant.language == "en"
    client.get(reverse("studyapp:demographics", args=[participant.token]) + "?lang=de")
    participant.refresh_from_db()
    assert participant.language == "en"


def test_the_switch_changes_the_language_mid_study_and_keeps_the_progress(client: Client, study: Study):
    Study.objects.filter(pk=study.pk).update(allow_browser_language=True)
    link = study.get_absolute_url() + "?PROLIFIC_PID=switch-1"
    switched = client.get(link + "&lang=de")
    assert switched.status_code == 302 and switched["Location"] == link  # the external id stays in the link
    consent = client.get(link)
    assert consent["Content-Language"] == "de" and form_value(consent.content.decode(), "external_id") == "switch-1"
    participant = start(client, study, "?PROLIFIC_PID=switch-1")
    assert (participant.external_id, participant.language) == ("switch-1", "de")
    client.post(reverse("studyapp:demographics", args=[participant.token]), DEMOGRAPHICS)
    client.post(reverse("studyapp:instructions", args=[participant.token]))
    answer_current(client, participant, "A")
    answer_current(client, participant, "B")

    question = reverse("studyapp:question", args=[participant.token, 3])
    page = client.get(question).content.decode()
    assert "Frage 3 von 12" in page and 'href="?lang=en"' in page
    back = client.get(question + "?lang=en")
    assert back.status_code == 302 and back["Location"] == question
    page = client.get(question)
    assert page["Content-Language"] == "en" and "Question 3 of 12" in page.content.decode()
    participant.refresh_from_db()
    assert (participant.language, participant.answered) == ("en", 2)
    stale = client.get(reverse("studyapp:question", args=[participant.token, 1]) + "?lang=de")
    assert stale.status_code == 302  # an old question's switch lands back on the current question
    assert client.get(client.get(stale["Location"])["Location"])["Content-Language"] == "de"
    assert answer_current(client, participant, "equal").endswith("/q/4/")
    participant.refresh_from_db()
    assert (participant.language, participant.answered) == ("de", 3)


@pytest.mark.parametrize("code", ["xx", "", "de-" + "x" * 300, "../de", "%00", "zh-Hant-TW"])
def test_an_unknown_language_falls_back_without_an_error(client: Client, study: Study, code: str):
    Study.objects.filter(pk=study.pk).update(allow_browser_language=True)
    switched = client.get(study.get_absolute_url(), {"lang": code})
    assert switched.status_code == 302
    page = client.get(study.get_absolute_url(), HTTP_ACCEPT_LANGUAGE=f"{code};q=abc, {code}")
    assert page.status_code == 200 and page["Content-Language"] == "en"
    participant = start(client, study)
    for name in ("demographics", "instructions", "done"):
        response = client.get(reverse(f"studyapp:{name}", args=[participant.token]), {"lang": code})
        assert response.status_code == 302
    response = client.get(reverse("studyapp:question", args=[participant.token, 1]), {"lang": code})
    assert response.status_code == 302
    participant.refresh_from_db()
    assert participant.language == "en"


def test_a_study_text_of_its_own_is_shown_as_written_in_every_language(client: Client, study: Study):
    Study.objects.filter(pk=study.pk).update(language="de", consent_text="Eigene Einwilligung: bitte lesen.")
    page = client.get(study.get_absolute_url()).content.decode()
    assert "Eigene Einwilligung: bitte lesen." in page and "In dieser Studie geht es darum" not in page


def test_the_analysis_reads_exports_with_and_without_the_language_column(study: Study, tmp_path):
    from analysis.io import read_participants

    participant = take_study(Client(HTTP_ACCEPT_LANGUAGE="de"), study)
    out = tmp_path / "export"
    call_command("export_responses", "--study", study.slug, "--out", str(out), stdout=io.StringIO())
    people, _ = read_participants(out / "participants.csv")
    assert list(zip(people["participant"], people["language"])) == [(participant.public_id, "en")]
    with (out / "participants.csv").open(encoding="utf-8", newline="") as handle:
        rows = [row[:-2] for row in csv.reader(handle)]  # an export from before the column (and the outcome)
    older = tmp_path / "older.csv"
    with older.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(rows)
    people, _ = read_participants(older)
    assert list(people["participant"]) == [participant.public_id] and "language" not in people.columns


def test_the_preview_shows_a_german_study_in_german(study: Study):
    from tests.studyapp.study_helpers import researcher_client

    Study.objects.filter(pk=study.pk).update(language="de", status=Study.Status.DRAFT)
    client = researcher_client("previewer", study)
    for name, args in (("preview", []), ("preview_demographics", []), ("preview_instructions", []),
                       ("preview_question", [1]), ("preview_done", [])):  # fmt: skip
        page = client.get(reverse(f"studyapp:{name}", args=[study.slug, *args]))
        assert page.status_code == 200 and page["Content-Language"] == "de", name
        assert texts(page.content.decode()).lang == "de" and "Vorschau: So sehen Teilnehmende" in page.content.decode()
    assert not Participant.objects.filter(study=study).exists()
