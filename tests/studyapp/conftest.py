"""Fixtures for the study app: a synthetic bundle and an imported, open study."""
from __future__ import annotations

from pathlib import Path

import pytest

from studyapp.models import Study
from studyapp.operations.bundle import import_bundle, validate_bundle
from tests.synthetic_bundle import write_synthetic_bundle


@pytest.fixture(autouse=True)
def empty_cache() -> None:
    """Each test starts with an empty cache: the dashboard caches summaries under a study's pk and
    counts, and a rolled-back test's study pk comes back in the next test."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def media_root(tmp_path: Path, settings) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def bundle_dir(tmp_path: Path) -> Path:
    return write_synthetic_bundle(tmp_path / "bundle", pairs_per_cell=6, images_per_dataset=8, seed=1)


@pytest.fixture
def study(db, bundle_dir: Path, media_root: Path) -> Study:
    """An open study with 2 datasets × 3 question types, 2 questions per cell (12 questions), no attention checks."""
    result = import_bundle(validate_bundle(bundle_dir), "pilot", title="Pilot study")
    Study.objects.filter(pk=result.study.pk).update(status=Study.Status.OPEN, questions_per_cell=2, attention_checks=0)
    return Study.objects.get(pk=result.study.pk)


@pytest.fixture
def checked_study(study: Study) -> Study:
    """The open study with two attention checks among its 12 questions (14 items per participant); failing both
    does not screen out here (max_failed_checks 2), so that tests of checks can take the whole study."""
    Study.objects.filter(pk=study.pk).update(attention_checks=2, max_failed_checks=2)
    study.refresh_from_db()
    return study
