"""The strict answer parser against replies real models give, and the MMAD-compat rule."""

import pytest

from harness.asking.parsing import parse_choice, parse_mmad_compat

YES_NO = {"A": "Yes.", "B": "No."}
FOUR = {"A": "Scratch", "B": "Crack", "C": "Hole", "D": "Contamination"}
LOCATION = {"A": "The top left of the image.", "B": "The center of the image.", "C": "The bottom right of the image."}

# (reply, options, expected letter or None, expected status)
CASES = [
    ("B", YES_NO, "B", "ok"),
    ("B.", YES_NO, "B", "ok"),
    ("(B)", YES_NO, "B", "ok"),
    ("[A]", YES_NO, "A", "ok"),
    ("b", YES_NO, "B", "ok"),
    ("**B**", YES_NO, "B", "ok"),
    ("`C`", FOUR, "C", "ok"),
    ("Answer: B", YES_NO, "B", "ok"),
    ("Answer: B.", YES_NO, "B", "ok"),
    ("The answer is B.", YES_NO, "B", "ok"),
    ("The correct answer is (B)", FOUR, "B", "ok"),
    ("The correct answer is (B).", FOUR, "B", "ok"),
    ("Final answer: D", FOUR, "D", "ok"),
    ("**Answer:** C", FOUR, "C", "ok"),
    ("I would choose option C.", FOUR, "C", "ok"),
    ("B. Yes.", {"A": "No.", "B": "Yes."}, "B", "ok"),
    ("A. Yes.", YES_NO, "A", "ok"),
    ("(B) No", YES_NO, "B", "ok"),
    ("B) Crack", FOUR, "B", "ok"),
    ("C: Hole", FOUR, "C", "ok"),
    ("D\nThe image shows a dark smear near the top.", FOUR, "D", "ok"),
    ("Yes.", YES_NO, "A", "ok"),
    ("No", YES_NO, "B", "ok"),
    ("yes", YES_NO, "A", "ok"),
    ("No, the object looks normal.", YES_NO, "B", "ok"),
    ("Yes, there is a scratch on the surface.", YES_NO, "A", "ok"),
    ("Crack", FOUR, "B", "ok"),
    ("The center of the image.", LOCATION, "B", "ok"),
    ("It looks like contamination on the surface.", FOUR, "D", "ok"),
    ("A scratch is visible on the left, so the answer is A.", FOUR, "A", "ok"),
    ("A crack runs across the part. Answer: B", FOUR, "B", "ok"),
    ("Looking at the image, I think it's B", FOUR, "B", "ok"),
    ("Comparing with the template, the defect is (C).", FOUR, "C", "ok"),
    ("B and C are wrong; the answer is A.", FOUR, "A", "ok"),
    ("The answer is: C", FOUR, "C", "ok"),
    ("Answer: E", FOUR, None, "invalid"),
    ("F", FOUR, None, "unparsable"),
    ("E.", YES_NO, None, "invalid"),
    ("", YES_NO, None, "unparsable"),
    ("   ", YES_NO, None, "unparsable"),
    ("I cannot determine this from the image.", FOUR, None, "unparsable"),
    ("Either (B) or (C), hard to say.", FOUR, None, "ambiguous"),
    ("B. or C.", FOUR, None, "ambiguous"),
    ("It could be a scratch or a crack.", FOUR, None, "ambiguous"),
    ("A. No.", YES_NO, None, "ambiguous"),
    ("A defect is present on the object.", YES_NO, None, "unparsable"),
    ("The Object Appears Normal", YES_NO, None, "unparsable"),
    ("Sorry, I can't help with that.", YES_NO, None, "unparsable"),
]


@pytest.mark.parametrize(("reply", "options", "letter", "status"), CASES)
def test_strict_parser(reply, options, letter, status):
    parsed = parse_choice(reply, options)
    assert (parsed.letter, parsed.status) == (letter, status), parsed.reason
    if status != "ok":
        assert parsed.reason  # every refusal says why


def test_table_is_large_enough():
    assert len(CASES) >= 40


@pytest.mark.parametrize(
    ("reply", "letter"),
    [
        ("B", "B"),
        ("The correct answer is (B)", "B"),  # MMAD's rule sees the final B
        ("A. Yes.", "A"),
        ("A scratch, so B", "B"),
        ("B, not A", "A"),  # last standalone letter wins, even when wrong
        ("Yes.", None),
        ("b", None),
        ("The answer is E", "E"),
    ],
)
def test_mmad_compat_parser(reply, letter):
    assert parse_mmad_compat(reply) == letter
