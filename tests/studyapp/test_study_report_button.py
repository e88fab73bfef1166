"""The dashboard's "Make analysis report" button runs the analysis on a fresh export."""
from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from studyapp.models import Answer

from study_helpers import take_study

pytestmark = pytest.mark.django_db


def test_report_button_counts_the_completed_participant(study, admin_client):
    take_study(Client(), study, choices="AB")
    answers = Answer.objects.filter(item__participant__study=study).count()
    response = admin_client.post(reverse("studyapp:report", args=[study.slug]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "data:image/png;base64," in html
    assert f"<tr><td>Counted</td><td>1</td><td>{answers}</td></tr>" in html


def test_report_without_answers_returns_to_the_dashboard_with_a_message(study, admin_client):
    response = admin_client.post(reverse("studyapp:report", args=[study.slug]), follow=True)
    assert response.redirect_chain[-1][0] == reverse("studyapp:dashboard", args=[study.slug])
    assert "No report:" in response.content.decode()


def test_report_needs_staff_and_post(study):
    url = reverse("studyapp:report", args=[study.slug])
    assert Client().post(url).status_code == 302
