"""One label schema for speech and music emotion corpora.

Everything that decides what a label *means* lives here, once: the canonical emotion
vocabulary (fixed order, so class ids never change between corpora or releases), the
valence/arousal scale and the rule that turns it into a category, the named label sets
an experiment selects, and the `datasets.Features` every prepared corpus shares.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

#: Canonical vocabulary. The first eight are RAVDESS's, in RAVDESS's order; classes a
#: corpus needs beyond them are appended, never inserted, so ids stay stable.
EMOTIONS: tuple[str, ...] = (
    "neutral",
    "calm",
    "happy",
    "sad",
    "angry",
    "fearful",
    "disgust",
    "surprised",
    "boredom",
    "tender",
    "contempt",
)

DOMAINS: tuple[str, ...] = ("speech", "music")

#: ``label`` of a clip whose native label has no canonical class: the clip is kept (with its
#: ``native_label``); -1 is `datasets.ClassLabel`'s "no label".
NO_LABEL = -1

#: Valence and arousal are stored on one scale, [-1, 1], with 0 the neutral midpoint.
VA_RANGE: tuple[float, float] = (-1.0, 1.0)

#: Russell quadrant -> canonical emotion (the field's common choice).
QUADRANT_TO_EMOTION: Mapping[str, str] = {"Q1": "happy", "Q2": "angry", "Q3": "sad", "Q4": "calm"}


def rescale_va(value: float, low: float, high: float) -> float:
    """Map a rating from a corpus's own scale [low, high] onto [-1, 1]."""
    if high <= low:
        raise ValueError(f"invalid rating scale [{low}, {high}]")
    return 2.0 * (float(value) - low) / (high - low) - 1.0


def va_to_quadrant(valence: float, arousal: float, threshold: float = 0.0) -> str:
    """Russell quadrant of a (valence, arousal) point on the [-1, 1] scale.

    A value equal to ``threshold`` counts as high (>=). Q1 high valence/high arousal,
    Q2 low/high, Q3 low/low, Q4 high/low.
    """
    high_v = valence >= threshold
    high_a = arousal >= threshold
    if high_a:
        return "Q1" if high_v else "Q2"
    return "Q4" if high_v else "Q3"


@dataclass(frozen=True)
class LabelSet:
    """A named selection of canonical emotions for an experiment.

    ``classes`` is the ordered output vocabulary; ``merge`` maps further canonical
    emotions onto one of those classes. Emotions in neither are dropped.
    """

    name: str
    classes: tuple[str, ...]
    merge: Mapping[str, str] = field(default_factory=dict)
    description: str = ""

    def __post_init__(self):
        unknown = [e for e in (*self.classes, *self.merge) if e not in EMOTIONS]
        if unknown:
            raise ValueError(f"label set {self.name!r} names unknown emotions {unknown}")
        bad = [t for t in self.merge.values() if t not in self.classes]
        if bad:
            raise ValueError(f"label set {self.name!r} merges into classes it lacks: {bad}")

    def map(self, emotion: str) -> str | None:
        """The class an emotion becomes in this set, or None when it is dropped."""
        if emotion in self.classes:
            return emotion
        return self.merge.get(emotion)

    @property
    def id2label(self) -> dict[int, str]:
        return dict(enumerate(self.classes))

    @property
    def label2id(self) -> dict[str, int]:
        return {c: i for i, c in enumerate(self.classes)}


LABEL_SETS: dict[str, LabelSet] = {
    s.name: s
    for s in (
        LabelSet("all", EMOTIONS, description="The whole canonical vocabulary."),
        LabelSet(
            "ravdess8",
            EMOTIONS[:8],
            description="RAVDESS speech's eight emotions.",
        ),
        LabelSet(
            "ravdess6",
            ("neutral", "calm", "happy", "sad", "angry", "fearful"),
            description="The six emotions RAVDESS song shares with speech (the paper's shared set).",
        ),
        LabelSet(
            "shared5",
            ("neutral", "happy", "sad", "angry", "fearful"),
            merge={"calm": "neutral"},
            description="ravdess6 with calm merged into neutral.",
        ),
        LabelSet(
            "4class",
            ("neutral", "happy", "sad", "angry"),
            description="The common 4-class SER set (IEMOCAP convention; excited is mapped to happy by the loader).",
        ),
        LabelSet(
            "quadrants",
            ("happy", "angry", "sad", "calm"),
            merge={
                "surprised": "happy",
                "fearful": "angry",
                "disgust": "angry",
                "contempt": "angry",
                "boredom": "sad",
                "tender": "calm",
                "neutral": "calm",
            },
            description="Russell quadrants named by their emotion: Q1 happy, Q2 angry, Q3 sad, Q4 calm.",
        ),
    )
}


def get_label_set(name_or_set: str | LabelSet | Sequence[str]) -> LabelSet:
    """Resolve a label-set name (or an explicit list of canonical emotions)."""
    if isinstance(name_or_set, LabelSet):
        return name_or_set
    if isinstance(name_or_set, str):
        try:
            return LABEL_SETS[name_or_set]
        except KeyError:
            raise ValueError(
                f"unknown label set {name_or_set!r}; known: {', '.join(LABEL_SETS)}"
            ) from None
    classes = tuple(name_or_set)
    return LabelSet("custom:" + ",".join(classes), classes)


def dataset_features(sampling_rate: int | None = None):
    """The `datasets.Features` every prepared corpus has.

    ``sampling_rate=None`` keeps each file's own rate; decoding with a rate resamples.
    """
    import datasets

    return datasets.Features(
        {
            "id": datasets.Value("string"),
            "audio": datasets.Audio(sampling_rate=sampling_rate),
            "label": datasets.ClassLabel(names=list(EMOTIONS)),
            "domain": datasets.ClassLabel(names=list(DOMAINS)),
            "corpus": datasets.Value("string"),
            "speaker": datasets.Value("string"),
            "native_label": datasets.Value("string"),
            "valence": datasets.Value("float32"),
            "arousal": datasets.Value("float32"),
            "fold": datasets.Value("string"),
        }
    )


def count_unlabelled(dataset) -> int:
    """Rows without a canonical class (``label`` == NO_LABEL)."""
    return sum(1 for y in dataset["label"] if y == NO_LABEL)


def apply_label_set(dataset, label_set: str | LabelSet | Sequence[str]):
    """Keep the rows a label set covers and relabel them into its classes.

    Rows with no canonical class (NO_LABEL) are never covered. Returns a dataset whose
    ``label`` is a `ClassLabel` over the set's classes.
    """
    import datasets

    ls = get_label_set(label_set)
    names = dataset.features["label"].names
    lookup = {i: ls.map(n) for i, n in enumerate(names)}
    lookup[NO_LABEL] = None
    target = ls.label2id
    kept = dataset.filter(lambda y: lookup[y] is not None, input_columns="label")
    new_features = kept.features.copy()
    new_features["label"] = datasets.ClassLabel(names=list(ls.classes))
    return kept.map(
        lambda y: {"label": target[lookup[y]]},
        input_columns="label",
        features=new_features,
    )
