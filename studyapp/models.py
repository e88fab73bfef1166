"""Data model of the user study: studies, imported stimulus bundles, participants, sequences, answers.

A participant is identified by an unguessable token (``secrets.token_urlsafe(32)``, 256 bits) that
sits in the path of every participant URL; the study page also remembers it in a signed cookie so
that a return visit to the study link resumes instead of starting over.
"""
from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Iterable
from string import Formatter
from urllib.parse import quote

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import gettext_noop

from contracts.adaptive import DEFAULT_MIN_SHARE, OBJECTIVES, SHARES
from contracts.task import task_phrase
from contracts.usefulness import (
    AGREEMENT,
    CONFIDENCE_LEVELS,
    DISTINCTION,
    FORWARD_SIMULATION,
    LEARN,
    NO_EXPLANATION,
    PHASES,
    PREFERENCE,
    TASKS,
)
from contracts.vocabulary import (
    ATTENTION_CHECK,  # noqa: F401  (the export's question type of a check)
    CHOICES,
    DEFAULT_MAX_FAILED_CHECKS,
    EQUAL,
)
from studyapp.conf import PARTICIPANT_LANGUAGES

DEFAULT_CONSENT = gettext_noop(
    "This study is about how people judge explanations that image classifiers give for their "
    "decisions. Taking part is voluntary and takes about 10 minutes. We record your answers, "
    "how long each answer took, and the few questions about yourself on the next page; we do "
    "not record your name, e-mail or IP address. You may stop at any time; you may ask for your "
    "data to be deleted by quoting the completion code shown at the end."
)
DEFAULT_INSTRUCTIONS = gettext_noop(
    "Each question shows one image and how two systems, System A and System B, explain their "
    "decision about it: the highlighted parts of the image are the parts the system bases its "
    "decision on. Both systems make the same decision. Please say which system behaves more "
    "reasonably, or that both are equally reasonable. There are no right or wrong answers; "
    "answer by your first impression. You can use the keys A, B and E to answer."
)
DEFAULT_QUESTION_PROMPT = gettext_noop(
    "Two systems (A and B) were trained to {task}. Both systems decide for the class {predicted_class} in "
    "this example. Below, the two systems show you on which parts of the image they base their decision. "
    "Which system behaves more reasonably?"
)
"""The paper's Figure 5 wording; ``{task}`` and ``{predicted_class}`` are filled in per question."""
PROMPT_PLACEHOLDERS = ("task", "predicted_class")
DEFAULT_COMPLETION_MESSAGE = gettext_noop("All your answers have been saved. Thank you for taking part.")
DEFAULT_TASK_INSTRUCTIONS = {
    DISTINCTION: gettext_noop(
        "Each question shows one image that a computer model has classified, and several explanations "
        "of the model: each explanation highlights the parts of the image the model would base one "
        "particular decision on, and each is for a different class. Please choose the explanation "
        "that belongs to the class the model actually decided for, and say how sure you are."
    ),
    AGREEMENT: gettext_noop(
        "Each question shows one image, the class a computer model decided for, and an explanation "
        "that highlights the parts of the image the model based its decision on. Please say whether "
        "you think the model's decision is correct, and how sure you are."
    ),
    FORWARD_SIMULATION: gettext_noop(
        "The study has three parts. First, you guess from an image alone which class a computer model "
        "decides for. Then you study a series of examples of the model's decisions. Finally, you guess "
        "the model's decisions again for new images. Your task is always to predict what the model "
        "says, not what the image really shows. With each guess, please say how sure you are."
    ),
}
"""The instructions a usefulness study starts with, one per task (a preference study has DEFAULT_INSTRUCTIONS)."""


def validate_question_prompt(text: str) -> None:
    """Refuse a question prompt whose ``{…}`` placeholders are not exactly among {task} and {predicted_class}."""
    try:
        parsed = [(field, spec, conversion) for _, field, spec, conversion in Formatter().parse(text) if field is not None]
    except ValueError as exc:
        raise ValidationError(
            f"The question prompt has an unmatched brace ({exc}); write {{{{ and }}}} for a literal brace."
        ) from None
    wrong = sorted({
        "{" + field + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
        for field, spec, conversion in parsed
        if field not in PROMPT_PLACEHOLDERS or spec or conversion
    })  # fmt: skip
    if wrong:
        raise ValidationError(
            "The question prompt may only use the placeholders {task} and {predicted_class}, not "
            + ", ".join(wrong) + "."
        )  # fmt: skip



def attention_check_problem(checks: int, questions: int) -> str | None:
    """The one sentence saying why ``checks`` attention checks do not fit ``questions`` questions, or None."""
    if checks <= questions:
        return None
    return (
        f"The study asks for {checks} attention checks but each participant answers only {questions} "
        f"questions; use at most {questions} attention checks."
    )


def questions_per_participant(cell_sizes: Iterable[int], per_cell: int) -> int:
    """How many questions a sequence holds: ``per_cell`` from each cell, fewer where a cell has fewer pairs."""
    return sum(min(size, per_cell) for size in cell_sizes)


def answered_trials_per_participant(trials: Iterable[tuple[str | None, str, str | None]], task: str,
                                    per_cell: int) -> int:
    """How many answered trials (learning trials not counted) a participant of a usefulness study gets.

    ``trials`` are (method, dataset, phase) of the bundle's trials that are answered: forward simulation
    asks every pre- and post-test trial; the other tasks ``per_cell`` trials per method × dataset.
    """
    cells = Counter((method or "", dataset, phase or "") for method, dataset, phase in trials)
    if task == FORWARD_SIMULATION:
        return sum(cells.values())
    return questions_per_participant(cells.values(), per_cell)


def new_participant_token() -> str:
    """Return an unguessable participant token (256 bits of randomness, URL-safe)."""
    return secrets.token_urlsafe(32)


def new_public_id() -> str:
    """Return the short random label under which a participant appears in exports."""
    return secrets.token_hex(6)


def new_completion_code() -> str:
    """Return a random completion code that participants quote (e.g. to Prolific)."""
    return secrets.token_hex(4).upper()


COMPLETION_CODE_PATTERN = r"^[A-Za-z0-9_-]{1,32}$"
validate_completion_code = RegexValidator(
    COMPLETION_CODE_PATTERN, "A completion code is 1 to 32 letters, digits, '_' or '-'."
)
CODE_PLACEHOLDER = "{code}"
STUDY_MAX_FAILED_CHECKS = max(DEFAULT_MAX_FAILED_CHECKS, 1)
"""A new study's screening rule: the analysis's default, but never ending a study on a single failed check
(Prolific forbids acting on one failure; a researcher may still set 0)."""
DEFAULT_RELEASE_AFTER_MINUTES = 60
ADAPTIVE_USEFULNESS_PROBLEM = (
    "An adaptive design chooses among the comparisons of a preference study; a usefulness study has none, "
    "so it runs the balanced design."
)


def validate_redirect_url(url: str) -> None:
    """Refuse a redirect URL with braces other than the one placeholder ``{code}``."""
    if "{" in url.replace(CODE_PLACEHOLDER, "") or "}" in url.replace(CODE_PLACEHOLDER, ""):
        raise ValidationError(
            f"The redirect URL may only use the placeholder {CODE_PLACEHOLDER}, which is replaced by the "
            "participant's completion code."
        )


def completion_code_field(help_text: str) -> models.CharField:
    """A study's completion code of one outcome: a new random code per study, editable by its researchers."""
    return models.CharField(max_length=32, default=new_completion_code, validators=[validate_completion_code],
                            help_text=help_text)  # fmt: skip


class Outcome(models.TextChoices):
    """How a participant's session ends: each end has its own completion code (Prolific's codes)."""

    COMPLETE = "complete", "complete"
    SCREENED_OUT = "screened_out", "screened out"
    NO_CONSENT = "no_consent", "no consent"


def image_url(stored_name: str) -> str:
    """The participant-facing URL of a stored stimulus image: only its opaque random name."""
    return reverse("studyapp:image", args=[stored_name.rsplit("/", 1)[-1]])


class Study(models.Model):
    """One study: the settings a researcher chooses and the link that is handed out."""

    class Status(models.TextChoices):
        DRAFT = "draft", "draft"
        OPEN = "open", "open"
        CLOSED = "closed", "closed"

    class Design(models.TextChoices):
        """How a preference study spreads each participant's questions over its comparisons."""

        BALANCED = "balanced", "balanced"
        ADAPTIVE = "adaptive", "adaptive"

    slug = models.SlugField(max_length=64, unique=True)
    title = models.CharField(max_length=200)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.DRAFT)
    consent_text = models.TextField(default=DEFAULT_CONSENT)
    instructions = models.TextField(default=DEFAULT_INSTRUCTIONS)
    questions_per_cell = models.PositiveSmallIntegerField(
        default=4,
        validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text="Questions each participant answers per question type × dataset.",
    )
    target_participants = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Newcomers are turned away once this many participants completed; empty = no limit.",
    )
    attention_checks = models.PositiveSmallIntegerField(
        default=2,
        validators=[MaxValueValidator(100)],
        help_text="Instructed-response questions each participant gets at random positions (0 = none).",
    )
    question_prompt = models.TextField(
        default=DEFAULT_QUESTION_PROMPT,
        validators=[validate_question_prompt],
        help_text="Shown above every question; {task} and {predicted_class} are filled in from the question's dataset.",
    )
    completion_message = models.TextField(
        default=DEFAULT_COMPLETION_MESSAGE, help_text="Shown on the last page, above the completion code."
    )
    language = models.CharField(
        max_length=8, choices=PARTICIPANT_LANGUAGES, default="en", help_text="The language of the participant pages."
    )
    allow_browser_language = models.BooleanField(
        default=False,
        help_text="Participants get the language their browser asks for (Accept-Language), with a switch on the page.",
    )
    completion_redirect_url = models.URLField(
        blank=True, max_length=500, validators=[validate_redirect_url],
        help_text="Where to send participants after the last answer (e.g. Prolific). With {code} in it "
        "(https://app.prolific.com/submissions/complete?cc={code}) every outcome is sent there with its own code.",
    )  # fmt: skip
    completion_code = completion_code_field("Shown to (or sent on with) participants who answered every question.")
    screened_out_code = completion_code_field(
        "Shown to (or sent on with) participants screened out by failed attention checks."
    )
    no_consent_code = completion_code_field(
        "Shown to (or sent on with) visitors who do not consent; they are asked to return the submission."
    )
    max_failed_checks = models.PositiveSmallIntegerField(
        default=STUDY_MAX_FAILED_CHECKS, validators=[MaxValueValidator(100)],
        help_text="A participant who fails more attention checks than this is screened out at once: the study "
        "ends for them with the screened-out code, their answers are kept and they are excluded (0: after one failure).",
    )  # fmt: skip
    release_after_minutes = models.PositiveIntegerField(
        default=DEFAULT_RELEASE_AFTER_MINUTES, validators=[MaxValueValidator(60 * 24 * 30)],
        help_text="A participant inactive this long without completing no longer holds their unanswered questions: "
        "they go to newcomers (returned or timed-out submissions; 0 = never).",
    )  # fmt: skip
    design = models.CharField(
        max_length=8, choices=Design.choices, default=Design.BALANCED,
        help_text="Balanced: every participant answers the same number of questions of every question type × "
        "dataset. Adaptive (preference studies only): each newcomer's questions go to the comparisons whose "
        "share is least settled by the answers so far (Chatbot Arena's rule), and every answer carries the "
        "weight 1/(K·p) that keeps the estimates unbiased (the export's design_weight).",
    )  # fmt: skip
    adaptive_objective = models.CharField(
        max_length=8, choices=[(objective, objective) for objective in OBJECTIVES], default=SHARES,
        help_text="Adaptive design: what to make precise, each comparison's share (shares) or the methods' "
        "Bradley–Terry ranking (ranking: lopsided comparisons get more answers).",
    )  # fmt: skip
    adaptive_min_share = models.FloatField(
        default=DEFAULT_MIN_SHARE, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Adaptive design: the part of its balanced share 1/K that every comparison keeps in expectation "
        "(0 to 1; 1 is the balanced split, 0 lets a settled comparison get almost nothing).",
    )  # fmt: skip
    task = models.CharField(
        max_length=20, choices=[(task, task) for task in TASKS], default=PREFERENCE, editable=False,
        help_text="What participants do: compare two explanations (preference) or a usefulness task; set by the import.",
    )  # fmt: skip
    created_at = models.DateTimeField(default=timezone.now)
    researchers = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="research_studies",
        help_text="Staff accounts that see and manage this study; superusers see every study.",
    )  # fmt: skip
    research_groups = models.ManyToManyField(
        "auth.Group", blank=True, related_name="research_studies",
        help_text="Groups whose staff members see and manage this study.",
    )  # fmt: skip

    class Meta:
        verbose_name_plural = "studies"
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(questions_per_cell__gte=1), name="study_questions_per_cell_positive"),
            models.CheckConstraint(condition=Q(adaptive_min_share__gte=0, adaptive_min_share__lte=1),
                                   name="study_adaptive_min_share_range"),
        ]

    def __str__(self) -> str:
        return f"{self.title} ({self.slug})"

    def get_absolute_url(self) -> str:
        """The one participant link a researcher hands out."""
        return reverse("studyapp:study", kwargs={"slug": self.slug})

    def completed_count(self) -> int:
        """Number of completed, not excluded participants."""
        return self.participants.filter(completed_at__isnull=False, excluded=False).count()

    def is_full(self) -> bool:
        """True once the target number of participants has completed."""
        return self.target_participants is not None and self.completed_count() >= self.target_participants

    @property
    def is_usefulness(self) -> bool:
        """True for a distinction, agreement or forward-simulation study (trials instead of pairs)."""
        return self.task != PREFERENCE

    @property
    def is_adaptive(self) -> bool:
        """True when the study assigns comparisons adaptively (contracts.adaptive)."""
        return self.design == self.Design.ADAPTIVE

    def comparisons(self) -> list[str]:
        """The question types of the study's pairs, sorted: the K comparisons of its design."""
        pairs = Pair.objects.filter(bundle__study_id=self.pk)
        return list(pairs.order_by("question_type").values_list("question_type", flat=True).distinct())

    def question_count(self) -> int | None:
        """Questions per participant (attention checks not counted) with the imported bundle; None before an import."""
        if self.pk is None or not Bundle.objects.filter(study_id=self.pk).exists():
            return None
        if self.is_usefulness:
            trials = Trial.objects.filter(bundle__study_id=self.pk).exclude(phase=LEARN)
            return answered_trials_per_participant(trials.values_list("method", "dataset__key", "phase"),
                                                   self.task, self.questions_per_cell)  # fmt: skip
        cells = (
            Pair.objects.filter(bundle__study_id=self.pk).values("question_type", "dataset").annotate(n=models.Count("id"))
        )
        return questions_per_participant((cell["n"] for cell in cells), self.questions_per_cell)

    def outcome_code(self, outcome: str) -> str:
        """The completion code of an outcome (``Outcome``)."""
        return {Outcome.COMPLETE: self.completion_code, Outcome.SCREENED_OUT: self.screened_out_code,
                Outcome.NO_CONSENT: self.no_consent_code}[outcome]  # fmt: skip

    def outcome_redirect_url(self, outcome: str) -> str:
        """Where the outcome's end page sends the participant, or "" to show the page with its code.

        A redirect URL with ``{code}`` serves every outcome, the outcome's code filled in; one without
        serves completion only, as before per-outcome codes.
        """
        url = self.completion_redirect_url
        if CODE_PLACEHOLDER in url:
            return url.replace(CODE_PLACEHOLDER, quote(self.outcome_code(outcome), safe=""))
        return url if outcome == Outcome.COMPLETE else ""

    def clean(self) -> None:
        """Attention checks must fit into the questions of the imported bundle; the outcomes' codes must differ;
        only a preference study may be adaptive."""
        if self.is_adaptive and self.is_usefulness:
            raise ValidationError({"design": ADAPTIVE_USEFULNESS_PROBLEM})
        questions = self.question_count()
        problem = None if questions is None else attention_check_problem(self.attention_checks, questions)
        if problem:
            raise ValidationError({"attention_checks": problem})
        codes = [self.completion_code, self.screened_out_code, self.no_consent_code]
        if len(set(codes)) < len(codes):
            raise ValidationError(
                "The completion codes of the three outcomes (complete, screened out, no consent) must differ, "
                "so that the code tells which outcome a participant had."
            )


class Bundle(models.Model):
    """A stimulus bundle (docs/formats.md) imported into a study; a study holds exactly one."""

    study = models.OneToOneField(Study, on_delete=models.CASCADE, related_name="bundle")
    bundle_id = models.CharField(max_length=200)
    content_sha256 = models.CharField(max_length=64, help_text="SHA-256 over the manifest and all image files.")
    manifest = models.JSONField()
    imported_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.bundle_id


class Dataset(models.Model):
    """A dataset of a bundle; its task completes the sentence "trained to …"."""

    bundle = models.ForeignKey(Bundle, on_delete=models.CASCADE, related_name="datasets")
    key = models.CharField(max_length=100)
    title = models.CharField(max_length=200)
    task = models.CharField(max_length=300)
    class_names = models.JSONField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["bundle", "key"], name="dataset_key_unique_per_bundle")]

    def __str__(self) -> str:
        return self.key

    @property
    def task_phrase(self) -> str:
        """The task without a leading "to" or trailing full stop, so "trained to {task}." reads well."""
        return task_phrase(self.task)


class Pair(models.Model):
    """One question of the bundle: an image and the two explanations to compare."""

    bundle = models.ForeignKey(Bundle, on_delete=models.CASCADE, related_name="pairs")
    pair_id = models.CharField(max_length=200)
    question_type = models.CharField(max_length=100)
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="pairs")
    image_id = models.CharField(max_length=300)
    true_class = models.CharField(max_length=200)
    predicted_class = models.CharField(max_length=200)
    random_source_image_id = models.CharField(max_length=300, blank=True)
    image = models.FileField(max_length=200, blank=True, help_text="The plain image, when the bundle has one.")

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["bundle", "pair_id"], name="pair_id_unique_per_bundle")]
        indexes = [models.Index(fields=["bundle", "question_type", "dataset"], name="pair_cell_idx")]

    def __str__(self) -> str:
        return self.pair_id

    @property
    def image_url(self) -> str:
        """Where participants fetch the plain image (empty when the bundle has none)."""
        return image_url(self.image.name) if self.image else ""


class Stimulus(models.Model):
    """One explanation image of a pair, stored in media storage under an opaque random name."""

    pair = models.ForeignKey(Pair, on_delete=models.CASCADE, related_name="stimuli")
    method = models.CharField(max_length=100)
    image = models.FileField(max_length=200)
    source_file = models.CharField(max_length=500, help_text="The file's path inside the bundle.")
    explanation_size = models.PositiveIntegerField(null=True, blank=True)
    order = models.PositiveSmallIntegerField(help_text="Place of the stimulus in the manifest's list (0 or 1).")

    class Meta:
        verbose_name_plural = "stimuli"
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["pair", "method"], name="stimulus_method_unique_per_pair"),
            models.UniqueConstraint(fields=["pair", "order"], name="stimulus_order_unique_per_pair"),
        ]

    def __str__(self) -> str:
        return f"{self.pair_id}:{self.method}"

    @property
    def url(self) -> str:
        """Where participants fetch the explanation image: its opaque stored name, nothing else."""
        return image_url(self.image.name)


class Participant(models.Model):
    """A volunteer taking a study; created when they consent, with their whole sequence."""

    class Gender(models.TextChoices):
        MALE = "male", _("Male")
        FEMALE = "female", _("Female")
        OTHER = "other", _("Other")
        UNDISCLOSED = "prefer not to say", _("Prefer not to say")

    class Experience(models.TextChoices):
        STRONGLY_DISAGREE = "strongly disagree", _("Strongly disagree")
        DISAGREE = "disagree", _("Disagree")
        UNDECIDED = "undecided", _("Undecided")
        AGREE = "agree", _("Agree")
        STRONGLY_AGREE = "strongly agree", _("Strongly agree")

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="participants")
    token = models.CharField(max_length=64, unique=True, default=new_participant_token, editable=False)
    public_id = models.CharField(max_length=16, unique=True, default=new_public_id, editable=False)
    external_id = models.CharField(max_length=128, null=True, blank=True)
    simulated = models.BooleanField(default=False)
    started_at = models.DateTimeField(default=timezone.now)
    demographics_at = models.DateTimeField(null=True, blank=True)
    instructions_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    excluded = models.BooleanField(default=False)
    exclusion_reason = models.CharField(max_length=300, blank=True)
    gender = models.CharField(max_length=20, choices=Gender.choices, blank=True)
    age = models.PositiveSmallIntegerField(null=True, blank=True)
    ml_experience = models.CharField(max_length=20, choices=Experience.choices, blank=True)
    xai_experience = models.CharField(max_length=20, choices=Experience.choices, blank=True)
    sequence_length = models.PositiveSmallIntegerField(default=0)
    answered = models.PositiveSmallIntegerField(
        default=0, help_text="Answers stored; raised in the transaction that stores each answer."
    )
    language = models.CharField(
        max_length=8, blank=True, default="", help_text="The language the participant took the study in."
    )
    arm = models.CharField(
        max_length=100, blank=True, default="",
        help_text="Forward simulation: the arm the participant learns in (a method key or 'none'); else empty.",
    )  # fmt: skip
    last_active_at = models.DateTimeField(
        default=timezone.now, help_text="The participant's last step (start, about you, instructions, an answer)."
    )
    screened_out_at = models.DateTimeField(
        null=True, blank=True, help_text="When failed attention checks exceeded the study's rule and ended the study."
    )

    class Meta:
        ordering = ["started_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["study", "external_id"],
                condition=Q(external_id__isnull=False),
                name="participant_external_id_unique_per_study",
            ),
            models.CheckConstraint(
                condition=Q(answered__lte=models.F("sequence_length")), name="participant_answered_within_sequence"
            ),
        ]

    def __str__(self) -> str:
        return self.public_id

    @property
    def status(self) -> str:
        """`excluded`, `completed` or `incomplete`, as in participants.csv."""
        if self.excluded:
            return "excluded"
        return "completed" if self.completed_at else "incomplete"

    @property
    def outcome(self) -> str:
        """How the session ended, as participants.csv's ``outcome``: complete, screened_out, or "" (not yet)."""
        if self.screened_out_at is not None:
            return Outcome.SCREENED_OUT
        return Outcome.COMPLETE if self.completed_at else ""


class Choice(models.TextChoices):
    """The three answers a question offers."""

    A = "A", _("System A")
    B = "B", _("System B")
    EQUAL = EQUAL, _("Equally reasonable")


ATTENTION_CHECK_CHOICE = Choice.EQUAL
"""What an attention check instructs: a neutral answer, the same whichever methods are shown."""


class SequenceItem(models.Model):
    """One question in a participant's stored sequence, with the side each method is shown on.

    An attention check (``expected_choice`` set) shows a pair like any question and instructs one
    answer; it may show a pair the participant also meets as a normal question.
    """

    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="items")
    position = models.PositiveSmallIntegerField()
    pair = models.ForeignKey(Pair, on_delete=models.PROTECT, related_name="sequence_items")
    stimulus_a = models.ForeignKey(Stimulus, on_delete=models.PROTECT, related_name="+")
    stimulus_b = models.ForeignKey(Stimulus, on_delete=models.PROTECT, related_name="+")
    expected_choice = models.CharField(
        max_length=5,
        choices=Choice.choices,
        blank=True,
        default="",
        help_text="The instructed answer of an attention check; empty for a normal question.",
    )
    design_probability = models.FloatField(
        null=True, blank=True,
        help_text="Adaptive design: the probability p the question's comparison had when the sequence was "
        "planned (the answer's weight is 1/(K·p)); empty in a balanced study and for attention checks (weight 1).",
    )  # fmt: skip

    class Meta:
        ordering = ["participant_id", "position"]
        # The few attention-check items, for the failed-check count of the live chart and the adaptive design.
        indexes = [models.Index(fields=["participant"], condition=~Q(expected_choice=""), name="item_check_idx")]
        constraints = [
            models.UniqueConstraint(fields=["participant", "position"], name="item_position_unique"),
            models.UniqueConstraint(
                fields=["participant", "pair"], condition=Q(expected_choice=""), name="item_pair_unique"
            ),
            models.CheckConstraint(
                condition=Q(expected_choice__in=["", *CHOICES]), name="item_expected_choice_valid"
            ),
            models.CheckConstraint(condition=Q(position__gte=1), name="item_position_positive"),
            models.CheckConstraint(condition=~Q(stimulus_a=models.F("stimulus_b")), name="item_sides_differ"),
        ]

    def __str__(self) -> str:
        return f"{self.participant_id}#{self.position}"

    @property
    def question_type(self) -> str:
        """The question type as exported: ``attention_check`` for a check, else the pair's."""
        return ATTENTION_CHECK if self.expected_choice else self.pair.question_type


class Answer(models.Model):
    """The participant's choice for one sequence item; the database allows one per item."""

    Choice = Choice

    item = models.OneToOneField(SequenceItem, on_delete=models.CASCADE, related_name="answer")
    choice = models.CharField(max_length=5, choices=Choice.choices)
    response_ms = models.PositiveIntegerField()
    answered_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(choice__in=list(CHOICES)), name="answer_choice_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.item}={self.choice}"

    @property
    def chosen_method(self) -> str:
        """The method key the participant chose, or ``equal``."""
        if self.choice == self.Choice.A:
            return self.item.stimulus_a.method
        if self.choice == self.Choice.B:
            return self.item.stimulus_b.method
        return EQUAL


class WindowCounter(models.Model):
    """A count in one fixed time window (studyapp.throttle); subclasses add the keyed hash it counts for."""

    window_start = models.DateTimeField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        abstract = True


class EnrolmentThrottle(WindowCounter):
    """How many participants one client (a keyed hash of its network, never an address) started in a window."""

    client = models.CharField(max_length=64)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["client", "window_start"], name="throttle_client_window_unique")]
        indexes = [models.Index(fields=["window_start"], name="throttle_window_idx")]

    def __str__(self) -> str:
        return f"{self.client[:8]}@{self.window_start:%H:%M}: {self.count}"


class LoginFailure(WindowCounter):
    """Failed logins of one account or one client in a window, under a keyed hash (no name or address stored)."""

    key = models.CharField(max_length=64)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["key", "window_start"], name="login_failure_key_window_unique")]
        indexes = [models.Index(fields=["window_start"], name="login_failure_window_idx")]

    def __str__(self) -> str:
        return f"{self.key[:8]}@{self.window_start:%H:%M}: {self.count} failures"


class ComparisonCount(models.Model):
    """One participant's answers in one comparison (question type), as the export orients them.

    ``method_1``, ``method_2`` and ``equal`` count the results of contracts.comparisons (attention
    checks left out); studyapp.aggregates recounts the row in the request that stores an answer, so
    the live chart sums these rows instead of reading every answer.
    """

    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="comparison_counts")
    comparison = models.CharField(max_length=100)
    method_1 = models.PositiveIntegerField(default=0)
    method_2 = models.PositiveIntegerField(default=0)
    equal = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["participant", "comparison"], name="comparison_count_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.participant_id}:{self.comparison} {self.method_1}/{self.method_2}/{self.equal}"


class Trial(models.Model):
    """One trial of a usefulness bundle (docs/formats.md): an image, the model's prediction, its panels."""

    bundle = models.ForeignKey(Bundle, on_delete=models.CASCADE, related_name="trials")
    trial_id = models.CharField(max_length=200)
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="trials")
    image_id = models.CharField(max_length=300)
    true_class = models.CharField(max_length=200)
    predicted_class = models.CharField(max_length=200)
    model_correct = models.BooleanField()
    method = models.CharField(max_length=100, blank=True, help_text="Empty for pre/post trials and the 'none' arm.")
    phase = models.CharField(max_length=8, blank=True, choices=[(p, p) for p in PHASES], help_text="Forward simulation only.")
    image = models.FileField(max_length=200, blank=True, help_text="The plain image.")

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["bundle", "trial_id"], name="trial_id_unique_per_bundle")]

    def __str__(self) -> str:
        return self.trial_id

    @property
    def arm(self) -> str:
        """The forward-simulation arm a learning trial belongs to (its method, or 'none'); empty otherwise."""
        return (self.method or NO_EXPLANATION) if self.phase == LEARN else ""

    @property
    def image_url(self) -> str:
        """Where participants fetch the plain image (empty when the bundle has none)."""
        return image_url(self.image.name) if self.image else ""


class TrialPanel(models.Model):
    """One explanation image of a trial; its class is stored for the export and never shown."""

    trial = models.ForeignKey(Trial, on_delete=models.CASCADE, related_name="panels")
    class_name = models.CharField(max_length=200)
    image = models.FileField(max_length=200)
    source_file = models.CharField(max_length=500, help_text="The file's path inside the bundle.")
    order = models.PositiveSmallIntegerField(help_text="Place in the manifest's list; 0 explains the prediction.")

    class Meta:
        ordering = ["trial_id", "order"]
        constraints = [models.UniqueConstraint(fields=["trial", "order"], name="panel_order_unique_per_trial")]

    def __str__(self) -> str:
        return f"{self.trial_id}:{self.order}"

    @property
    def url(self) -> str:
        """Where participants fetch the panel: its opaque stored name, nothing else."""
        return image_url(self.image.name)


class TrialItem(models.Model):
    """One trial in a participant's stored sequence, with its panels in the order shown.

    An attention check (``expected_answer`` set) shows a trial's page and instructs one answer.
    """

    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="trial_items")
    position = models.PositiveSmallIntegerField()
    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="items")
    panel_order = models.JSONField(default=list, help_text="TrialPanel ids in the order shown.")
    prediction_panel = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Distinction: the 1-based place of the model's top-1 panel as shown."
    )
    expected_answer = models.CharField(
        max_length=200, blank=True, default="", help_text="The instructed answer of an attention check; else empty."
    )

    class Meta:
        ordering = ["participant_id", "position"]
        indexes = [models.Index(fields=["participant"], condition=~Q(expected_answer=""), name="trial_item_check_idx")]
        constraints = [
            models.UniqueConstraint(fields=["participant", "position"], name="trial_item_position_unique"),
            models.CheckConstraint(condition=Q(position__gte=1), name="trial_item_position_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.participant_id}#{self.position}"


class TrialAnswer(models.Model):
    """The participant's answer to one trial item (empty answer for a learning trial); one per item."""

    item = models.OneToOneField(TrialItem, on_delete=models.CASCADE, related_name="answer")
    answer = models.CharField(max_length=200, blank=True)
    confidence = models.PositiveSmallIntegerField(null=True, blank=True, help_text="1 (guessing) … 4 (certain).")
    response_ms = models.PositiveIntegerField()
    answered_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(confidence__isnull=True) | Q(confidence__in=list(CONFIDENCE_LEVELS)),
                name="trial_answer_confidence_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.item}={self.answer}"
