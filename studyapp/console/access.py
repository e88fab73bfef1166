"""Who may see and manage which study: Django's model permissions, scoped to the studies a user belongs to.

A study lists its researchers (staff accounts) and research groups. A staff user sees a study, and
everything stored under it, when they are one of its researchers or in one of its groups *and*
hold the model permission for what they do (``studyapp.view_study`` to look, ``change_participant``
to exclude, ``delete_participant`` to delete). Superusers see every study; a study nobody was
given is theirs alone. Creating a study needs ``studyapp.add_study``; its creator becomes one of
its researchers. ``StudyAccessBackend`` answers ``user.has_perm(perm, obj)`` for these
objects, so views and the admin ask Django's usual question.
"""
from __future__ import annotations

from django.contrib.auth.backends import BaseBackend
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, Group, Permission
from django.core.exceptions import PermissionDenied
from django.db import models
from django.db.models import Q, QuerySet
from django.http import Http404

from studyapp.models import (
    Answer,
    Bundle,
    Dataset,
    Pair,
    Participant,
    SequenceItem,
    Stimulus,
    Study,
    Trial,
    TrialAnswer,
    TrialItem,
    TrialPanel,
)

# How each model reaches its study, as a query path ("" for the study itself).
STUDY_PATHS: dict[type[models.Model], str] = {
    Study: "",
    Bundle: "study",
    Dataset: "bundle__study",
    Pair: "bundle__study",
    Stimulus: "pair__bundle__study",
    Participant: "study",
    SequenceItem: "participant__study",
    Answer: "item__participant__study",
    Trial: "bundle__study",
    TrialPanel: "trial__bundle__study",
    TrialItem: "participant__study",
    TrialAnswer: "item__participant__study",
}
RESEARCHER_GROUP = "researchers"
# What the group create_researcher puts researchers in may do (to their own studies only).
RESEARCHER_PERMISSIONS = (
    "view_study", "change_study", "add_study", "view_bundle", "view_dataset", "view_pair", "view_stimulus",
    "view_participant", "change_participant", "delete_participant", "view_sequenceitem", "view_answer",
    "view_trial", "view_trialpanel", "view_trialitem", "view_trialanswer",
)  # fmt: skip
User = AbstractBaseUser | AnonymousUser


def studies_for(user: User) -> QuerySet[Study]:
    """The studies this user may see: all for a superuser, their own for staff with ``view_study``, else none."""
    if not (user.is_active and user.is_staff):
        return Study.objects.none()
    if user.is_superuser:
        return Study.objects.all()
    if not user.has_perm("studyapp.view_study"):
        return Study.objects.none()
    member = Q(researchers=user) | Q(research_groups__in=user.groups.all())
    return Study.objects.filter(pk__in=Study.objects.filter(member).values("pk"))


def visible(queryset: QuerySet, user: User) -> QuerySet:
    """The rows of ``queryset`` (a study-app model) that belong to a study the user may see."""
    path = STUDY_PATHS[queryset.model]
    return queryset.filter(**{f"{path}__in" if path else "pk__in": studies_for(user).values("pk")})


def can_access(user: User, obj: models.Model) -> bool:
    """True when ``obj`` belongs to a study the user may see."""
    return visible(type(obj)._default_manager.filter(pk=obj.pk), user).exists()


def study_or_403(user: User, slug: str, perm: str = "studyapp.view_study") -> Study:
    """The study ``slug`` when the user holds ``perm`` on it; 404 when there is no such study, else 403.

    A study's slug is in its public participant link, so telling "not yours" from "none" gives nothing away.
    """
    study = studies_for(user).filter(slug=slug).first()
    if study is not None and user.has_perm(perm, study):
        return study
    if not Study.objects.filter(slug=slug).exists():
        raise Http404("No such study.")
    raise PermissionDenied("This study is not one of yours.")


def researcher_group() -> Group:
    """The group with the permissions researchers need, created or brought up to date."""
    group, _ = Group.objects.get_or_create(name=RESEARCHER_GROUP)
    group.permissions.set(Permission.objects.filter(content_type__app_label="studyapp", codename__in=RESEARCHER_PERMISSIONS))
    return group


class StudyAccessBackend(BaseBackend):
    """Object permissions on study-app rows: the model permission (from ModelBackend) and access to the row's study."""

    def has_perm(self, user_obj: User, perm: str, obj: models.Model | None = None) -> bool:
        if obj is None or type(obj) not in STUDY_PATHS or not (user_obj.is_active and user_obj.is_staff):
            return False
        return user_obj.has_perm(perm) and can_access(user_obj, obj)
