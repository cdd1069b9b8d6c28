"""Question generation on the real datasets' folder names, with MMAD's knowledge file, in MMAD's
shape, and without answer leaks (options that name the same thing, or stand out by length)."""

import json
from pathlib import Path
from collections import Counter

import numpy as np
import pytest

from harness.cli import main
from question_gen.knowledge import defect_info, folder_key
from question_gen.knowledge_file import parse_entry
from question_gen.options import pick_distractors, same_thing
from question_gen.quality import length_bias
from tests.real_layouts import GOODSAD, MVTEC_AD, MVTEC_LOCO, VISA, write_ds_mvtec_tree, write_train_test_tree, write_visa_tree

LAYOUTS = {
    "mvtec": (MVTEC_AD, lambda root: write_train_test_tree(root, MVTEC_AD)),
    "dsmvtec": (MVTEC_AD, lambda root: write_ds_mvtec_tree(root, MVTEC_AD)),
    "loco": (MVTEC_LOCO, lambda root: write_train_test_tree(root, MVTEC_LOCO, loco=True)),
    "goodsad": (GOODSAD, lambda root: write_train_test_tree(root, GOODSAD, mask_name="{stem}.png")),
    "visa": (VISA, lambda root: write_visa_tree(root, VISA)),
}


def _generate(tmp_path, source: str, *extra: str) -> tuple[dict, dict]:
    out = tmp_path / "set"
    assert main(["generate", "--source", source, "--out", str(out), *extra]) == 0
    return json.loads((out / "mmad.json").read_text()), json.loads((out / "generation_report.json").read_text())


@pytest.mark.parametrize("kind", list(LAYOUTS))
def test_real_folder_names_are_known_and_every_category_gets_object_questions(tmp_path, kind):
    categories, write = LAYOUTS[kind]
    write(tmp_path / "data")
    mmad, report = _generate(tmp_path, f"{kind}:{tmp_path / 'data'}")
    assert not [w for w in report["warnings"] if "unknown defect kind" in w]
    classified = {key.split("/")[1] for key, record in mmad.items() for q in record["conversation"] if q["type"] == "Object Classification"}
    assert classified == set(categories)  # every category, known to the tables or not
    for key, record in mmad.items():
        for question in record["conversation"]:
            options = list(question["Options"].values())
            right = question["Options"][question["Answer"]]
            if question["type"] == "Object Classification":
                assert not any(same_thing(right, o) for o in options if o != right), (key, options)
            if question["type"] == "Defect Classification":
                folder = key.split("/")[-2]
                assert folder_key(folder) not in ("combined", "logical_anomalies", "structural_anomalies", "defective")  # groups are not one kind
    if kind == "visa":  # labels from image_anno.csv; two labels on one image make it "combined"
        names = {q["Options"][q["Answer"]] for key, r in mmad.items() if "/candle/" in key for q in r["conversation"] if q["type"] == "Defect Classification"}
        assert {"Chunk of wax missing", "Abnormal wick", "Extra wax"} <= names
        assert "other: defect folder 'other' names several defect kinds" not in json.dumps(report)  # counted as a skip, not a warning
        assert any("names several defect kinds (Combined defects)" in reason for reason in report["skipped"])


def test_taxonomy_fixes_the_wrong_aliases():
    assert defect_info("cut", "mvtec-ad", "leather").kind.kind == "cut"  # was "Missing part"
    assert defect_info("cut_inner_insulation", "mvtec-ad", "cable").name == "Cut inner insulation"
    assert defect_info("rough", "mvtec-ad", "zipper").name == "Rough teeth" and defect_info("rough", "mvtec-ad", "tile").name == "Rough surface"
    assert defect_info("broken", "goodsad", "food_package").kind.kind == "opened"
    assert defect_info("Different Colour  Spot", "visa", "cashew").name == "Different colour spot"  # labels read loosely
    assert defect_info("combined", "mvtec-ad", "pill").group and not defect_info("wobble", "folder", "x").known


def test_object_names_that_name_the_same_thing():
    for a, b in [("Capsules", "Pill capsule"), ("Bottle", "Drink bottle"), ("Printed circuit board", "printed circuit boards"), ("Screw", "Bag of screws and washers")]:
        assert same_thing(a, b) and same_thing(b, a)
    for a, b in [("Metal nut", "Metal grid"), ("Gear", "Bolt"), ("Hazelnut", "Cashew nut")]:
        assert not same_thing(a, b)


def test_distractor_length_rank_is_uniform():
    """Over many draws the right answer is the longest of four as often as a blind guess (25%), and
    no longer than its distractors on average; a conflicting candidate is never used."""
    pool = [f"option {'x' * n}" for n in range(1, 12)]
    ranks = Counter()
    right_total = distractor_total = 0.0
    for seed in range(2000):
        rng = np.random.default_rng(seed)
        correct = pool[int(rng.integers(3, 8))]
        chosen = pick_distractors(correct, [pool], 3, rng)
        assert len(chosen) == 3 and correct not in chosen and len(set(chosen)) == 3
        ranks[sum(len(c) > len(correct) for c in chosen)] += 1
        right_total += len(correct)
        distractor_total += sum(map(len, chosen)) / 3
    assert all(abs(ranks[k] / 2000 - 0.25) < 0.04 for k in range(4))
    assert right_total <= distractor_total
    # the preferred pool first; a later pool only for a longer option the first lacks (when the draw asks for one)
    used_later = 0
    for seed in range(400):
        chosen = pick_distractors("medium", [["a", "b", "c", "d"], ["much longer one"]], 3, np.random.default_rng(seed))
        assert len([c for c in chosen if c in "abcd"]) >= 2
        used_later += "much longer one" in chosen
    assert 0.68 < used_later / 400 < 0.82  # 3 of the 4 equally likely draws want a longer option


def test_synthetic_set_has_no_length_leak(synthetic_set):
    mmad = json.loads((synthetic_set / "mmad.json").read_text())
    bias = length_bias(mmad)
    assert bias["fixed_option_subtasks"] == ["Anomaly Detection"]  # Yes/No: the label balance, reported apart
    assert abs(bias["longest_is_right_percent"] - bias["expected_percent"]) <= 5.0, bias
    for subtask, row in bias["mean_length_by_subtask"].items():
        if subtask != "Anomaly Detection":  # no more than a character longer than its distractors on average
            assert row["right_mean_chars"] <= row["distractor_mean_chars"] + 1.0, (subtask, row)
    # and within each subtask, picking the longest option buys little over a blind guess (25%)
    for subtask in {q["type"] for r in mmad.values() for q in r["conversation"]} - {"Anomaly Detection"}:
        questions = [q for r in mmad.values() for q in r["conversation"] if q["type"] == subtask]
        longest = sum(all(len(q["Options"][q["Answer"]]) > len(v) for k, v in q["Options"].items() if k != q["Answer"]) for q in questions)
        assert longest / len(questions) <= 0.35, (subtask, longest, len(questions))


# One consequence sentence per family (analysis_families.toml), so that a category's entries say
# different things and a knowledge-based Defect Analysis question can be drawn from them.
_CONSEQUENCES = (
    "This defect weakens the structural integrity of part {x}.",
    "This defect could compromise how part {x} fits its mating parts.",
    "This defect could lead to a short circuit in the electric paths of part {x}.",
    "This defect poses a hygiene risk to anyone using part {x}.",
    "This defect could cause the contents of part {x} to leak out.",
    "This defect could cause confusion, as the label of part {x} becomes unreadable.",
)
# Defects the file describes beyond the folders with images (MMAD's file does the same): the own
# alternatives of a knowledge-based question.
_EXTRA_FOLDERS = ("fold", "print", "thread")


def _knowledge(categories: dict[str, list[str]]) -> dict:
    """An MMAD-shaped domain_knowledge.json for these categories (prose as MMAD writes it)."""
    entries = {}
    for c, (category, defects) in enumerate(categories.items()):
        entry = {"good": f" <Normal Characteristics>\n Description: The {category} sample shows its regular pattern, variant {c}. Minor variations in texture are normal."}
        for d, folder in enumerate([*defects, *_EXTRA_FOLDERS]):
            entry[folder] = (f" <{folder.title()} Flaw {c}{d}>\n Description: The defect on the {category} looks like a dark spot {c}{d}.\n"
                             f" It sits anywhere. {_CONSEQUENCES[d % len(_CONSEQUENCES)].format(x=f'{c}{d}')}")
        entry["combined"] = " <All Defects>\n Description: A summary of the category's defects."
        entries[category] = entry
    return {"MVTec": entries, "VisA": {}}


def test_mmad_knowledge_file_grounds_names_and_options_from_the_same_object(tmp_path):
    """Names come from the file; a Description or Analysis key from the file is the defect's own
    sentence of that role, against the same object's other entries (never another object's, which
    would give the answer away); questions the file does not touch are the same with it or without."""
    assert main(["synth", "--out", str(tmp_path / "data"), "--size", "64"]) == 0
    (tmp_path / "data" / "synthetic.json").unlink()  # a folder of one's own in MVTec's layout (not synth's: that finds the synthetic objects' facts)
    categories = {p.name: sorted(d.name for d in (p / "test").iterdir() if d.name != "good") for p in sorted((tmp_path / "data").iterdir()) if p.is_dir()}
    (tmp_path / "domain_knowledge.json").write_text(json.dumps(_knowledge(categories)))
    mmad, report = _generate(tmp_path, f"mvtec:{tmp_path / 'data'}", "--knowledge", str(tmp_path / "domain_knowledge.json"))
    plain, _ = _generate(tmp_path / "plain", f"mvtec:{tmp_path / 'data'}")
    templates = lambda records: {k: (r["random_templates"], r["similar_templates"]) for k, r in records.items()}  # noqa: E731
    assert templates(mmad) == templates(plain)  # a 1-shot model sees the same template with the file or without
    from_file = Counter()
    for key, record in mmad.items():
        category, folder = key.split("/")[1], key.split("/")[-2]
        c = list(categories).index(category)
        own = [*categories[category], *_EXTRA_FOLDERS]
        appearance = {f"The defect on the {category} looks like a dark spot {c}{d}." for d in range(len(own))}
        consequence = {_CONSEQUENCES[d % len(_CONSEQUENCES)].format(x=f"{c}{d}") for d in range(len(own))}
        unchanged = {q["type"]: q for q in plain[key]["conversation"]}
        for q in record["conversation"]:
            right, source = q["Options"][q["Answer"]], q.get("provenance", {}).get("knowledge", "")
            if q["type"] in ("Anomaly Detection", "Defect Localization", "Object Classification", "Object Analysis"):
                assert q == unchanged[q["type"]], (key, q)  # the file adds nothing to these, and moves no draw
                continue
            d = own.index(folder)
            if q["type"] == "Defect Classification":
                assert right == f"{folder.title()} Flaw {c}{d}".capitalize() and source == f"domain_knowledge.json#MVTec/{category}/{folder}"
            if source.startswith("domain_knowledge.json") and q["type"] in ("Defect Description", "Defect Analysis"):
                mine = appearance if q["type"] == "Defect Description" else consequence
                assert right in mine and set(q["Options"].values()) <= mine, q  # every option is this object's
                assert source == f"domain_knowledge.json#MVTec/{category}/{folder}"
                from_file[q["type"]] += 1
    assert from_file["Defect Description"] > 20 and from_file["Defect Analysis"] > 20, from_file
    domain = json.loads((tmp_path / "set/domain_knowledge.json").read_text())
    assert domain["data"]["brick"]["crack"].startswith(" <Crack flaw 00>")  # the file's names travel with the set


def test_toml_knowledge_with_object_facts_and_a_file_for_another_dataset(tmp_path, capsys):
    assert main(["synth", "--out", str(tmp_path / "data"), "--size", "64"]) == 0
    (tmp_path / "k.toml").write_text(
        '[data.gravel.object]\nname = "Road gravel"\n'
        'facts = [{ question = "What lies on the ground?", answer = "Small stones", distractors = ["Tall grass", "Red bricks", "Steel plates", "Sand dunes"] }]\n'
    )
    mmad, _ = _generate(tmp_path, f"mvtec:{tmp_path / 'data'}", "--knowledge", str(tmp_path / "k.toml"))
    gravel = [q for key, r in mmad.items() if "/gravel/" in key for q in r["conversation"]]
    assert {q["Options"][q["Answer"]] for q in gravel if q["type"] == "Object Classification"} == {"Road gravel"}
    facts = [q for q in gravel if q["type"] == "Object Analysis"]
    assert facts and all(q["Options"][q["Answer"]] == "Small stones" and q["provenance"]["knowledge"] == "k.toml#data/gravel/object" for q in facts)
    (tmp_path / "other.json").write_text(json.dumps({"VisA": {}, "GoodsAD": {}}))
    assert main(["generate", "--source", f"mvtec:{tmp_path / 'data'}", "--out", str(tmp_path / "set2"), "--knowledge", str(tmp_path / "other.json")]) == 2
    assert "no entry for dataset 'data'; its datasets are GoodsAD, VisA" in capsys.readouterr().err


def test_knowledge_text_parsing():
    entry = parse_entry(' <Broken Teeth>\n Description: The defect is characterized by one or more missing teeth within the zipper\'s sequence. '
                        'The affected area is often located near the top of the image. '
                        'The presence of broken teeth not only affects the aesthetic but also compromises the operation. '
                        'It is caused by rough handling during assembly.')
    assert entry.title == "Broken Teeth" and entry.appearance == "The defect is characterized by one or more missing teeth within the zipper's sequence."
    assert entry.consequence == "The presence of broken teeth not only affects the aesthetic but also compromises the operation."
    assert entry.cause == "It is caused by rough handling during assembly."  # the location sentence keys nothing
    long = parse_entry(" <X>\n Description: " + " ".join(["word"] * 40) + ".")
    assert long.appearance == " ".join(["word"] * 24) + " …" and long.consequence is None  # cut at 24 words
    assert parse_entry("no title here") is None


def test_mmad_shape_caps_five_questions_detection_first(tmp_path):
    mmad, report = _generate(tmp_path, "synthetic", "--mmad-shape", "--size", "64")
    for key, record in mmad.items():
        types = [q["type"] for q in record["conversation"]]
        assert types[0] == "Anomaly Detection" and len(types) <= 5
        if "/good/" in key:
            assert set(types) <= {"Anomaly Detection", "Object Classification", "Object Analysis"}
        else:
            # object questions fill only the places of defect questions that could not be asked
            defect_questions = [t for t in types if t.startswith("Defect")]
            assert "Defect Classification" in types and len(types) - 1 - len(defect_questions) <= 4 - len(defect_questions)
    assert sum(v for k, v in report["skipped"].items() if "--mmad-shape" in k) > 0


def _labelled_sentences() -> list[tuple[str, str, str, str]]:
    path = Path(__file__).parent / "data" / "mmad_knowledge_roles.tsv"
    rows = [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines() if line and not line.startswith("#")]
    return [tuple(row) for row in rows if len(row) == 4 and row[0] != "role"]


def test_sentence_roles_on_mmads_own_knowledge_texts():
    """Each sentence's role (appearance, location, cause, consequence) against a hand-labelled table
    of MMAD's domain_knowledge.json: the cues were fitted on one part and are checked on the other;
    a location sentence is never taken for a consequence (it once keyed Defect Analysis)."""
    from question_gen.sentence_roles import sentence_role

    rows = _labelled_sentences()
    by_split = {split: [(role, sentence) for role, _, sentence, split_ in rows if split_ == split] for split in ("fit", "held-out")}
    assert len(by_split["fit"]) == 130 and len(by_split["held-out"]) == 40
    accuracy = {split: sum(sentence_role(s) == role for role, s in pairs) / len(pairs) for split, pairs in by_split.items()}
    assert accuracy["fit"] >= 0.95 and accuracy["held-out"] >= 0.85, accuracy  # 96.9% and 87.5% when written
    assert not [s for role, _, s, _ in rows if role == "location" and sentence_role(s) in ("consequence", "cause", "appearance")]


def test_analysis_options_hold_for_the_material_and_never_say_the_same():
    """A cause or consequence key is true of the object's material (no short circuit on a hazelnut,
    no insect in a metal nut); each distractor belongs to a kind that cannot be mistaken for the
    defect's, and to a family none of the kind's own statements has (never "it spoils the looks",
    which is weakly true of any defect)."""
    from question_gen import descriptions
    from question_gen.knowledge import CategoryKnowledge, DefectInfo, defect_kinds, exclusive

    kinds = defect_kinds()[0]
    texts_of = {s.text: (k, s) for k, entry in kinds.items() for s in (*entry.causes, *entry.consequences)}
    for material in ("food", "metal", "electronic", None):
        knowledge = CategoryKnowledge(category="x", object_name="X", object_source="", material=material)
        for kind in kinds.values():
            info = DefectInfo(kind.kind, kind.name, kind, False, "test")
            for aspect in ("cause", "consequence"):
                for pick in range(3):
                    described = descriptions.analysis(knowledge, info, aspect, pick)
                    if described is None:
                        assert not [s for s in kind.statements(aspect) if s.applies(material)]
                        continue
                    owner, key = texts_of[described.correct]
                    assert owner == kind.kind and key.applies(material)
                    own_families = {s.family for s in kind.statements(aspect)}
                    for text in described.pools[0]:
                        other, statement = texts_of[text]
                        assert exclusive(kind.kind, other) and statement.applies(material), (kind.kind, text)
                        assert statement.family not in own_families | {"looks"}, (kind.kind, text)
    hole = kinds["hole"]
    food = CategoryKnowledge(category="hazelnut", object_name="Hazelnut", object_source="", material="food")
    causes = {descriptions.analysis(food, DefectInfo("hole", "Hole", hole, False, "t"), "cause", p).correct for p in range(4)}
    assert causes == {"An insect or pest that bored a way through the shell or skin"}  # never "a sharp tool" for a nut


def test_analysis_distractors_come_only_from_defects_that_can_occur_on_the_object():
    """A hand audit of real tire photographs (unknown material) found every Defect Analysis question
    answerable without the image: its distractors spoke of a package's count, a wrong product or a
    marking, defects no tire has. Distractors now come only from kinds that can occur on any object,
    on the object's material (defects.toml: occurs_on), or that its own defect folders name."""
    from question_gen import descriptions
    from question_gen.knowledge import CategoryKnowledge, DefectInfo, defect_kinds

    kinds = defect_kinds()[0]
    owner = {s.text: k for k, entry in kinds.items() for s in (*entry.causes, *entry.consequences)}
    infos = {folder: DefectInfo(folder, kinds[kind].name, kinds[kind], False, "test") for folder, kind in (("hole", "hole"), ("cut", "cut"), ("contamination", "stain"))}
    tire = CategoryKnowledge(category="tire", object_name="Tire", object_source="", material=None, defects=infos)
    offered = set()
    for info in infos.values():
        for aspect in ("cause", "consequence"):
            for pick in range(3):
                described = descriptions.analysis(tire, info, aspect, pick)
                if described is not None:
                    offered |= {owner[text] for text in described.pools[0]}
    anywhere = {k for k, entry in kinds.items() if entry.occurs_on is None}
    assert offered and offered <= anywhere | {"hole", "cut", "stain"}, offered
    assert not offered & {"stuck_together", "wrong_part", "print_defect", "surface_damage", "opened", "leak", "missing_part"}
    # a packaged object takes the package's defects; and a folder of the object's own names a kind
    # that its material alone would not allow
    box = CategoryKnowledge(category="box", object_name="Box", object_source="", material="packaging", defects={"scratch": DefectInfo("scratch", "Scratch", kinds["scratch"], False, "t")})
    pools = {owner[t] for p in range(3) for a in ("cause", "consequence") if (d := descriptions.analysis(box, box.defects["scratch"], a, p)) for t in d.pools[0]}
    assert "opened" in pools or "surface_damage" in pools or "leak" in pools, pools
    own = {"scratch": box.defects["scratch"], "wrong": DefectInfo("wrong", "Wrong part", kinds["wrong_part"], False, "t")}
    food_with_wrong = CategoryKnowledge(category="nut", object_name="Nut", object_source="", material="food", defects=own)
    pools = {owner[t] for p in range(3) for a in ("cause", "consequence") if (d := descriptions.analysis(food_with_wrong, own["scratch"], a, p)) for t in d.pools[0]}
    assert "wrong_part" in pools and "opened" not in pools, pools


def _attributes(size: str, tone: str, area: float, delta: float, shift: float, shown: float = 1.0):
    from question_gen.attributes import DefectAttributes

    return DefectAttributes(cell_shares=((0.0,) * 3,) * 3, main_cell=(1, 1), relative_area=area, size=size, shape=None, count=1, tone=tone,
                            measures={"relative_area": area, "luminance_delta": delta, "colour_shift": shift, "shown_share": shown})


def test_descriptions_offer_no_value_a_look_cannot_tell_from_the_keys():
    """A hand audit of real capsules found Description keys a person could not tell from a distractor:
    "a single medium opening" beside "a single large opening" (no scale in the image), "similar in tone"
    beside "with a different colour" (grey specks on a black cap), and "a single scratch" of two or
    three faint lines in one outline. Distractors now take no size next to the key's, no colour beside
    a similar tone, and faint lines (pixels confirming under 5% of the outline) get no description."""
    from question_gen.attributes import LARGE_AREA, SMALL_AREA
    from question_gen.descriptions import measured

    medium = measured(_attributes("medium", "similar", (SMALL_AREA * LARGE_AREA) ** 0.5, 0.0, 0.0), ("opening", "openings"))
    assert medium is not None and "medium" in medium.correct and "similar in tone" in medium.correct
    for text in medium.pools[0]:
        assert "large" not in text and "small" not in text, text  # both sizes are next to medium
        assert "different colour" not in text, text
    small = measured(_attributes("small", "darker", SMALL_AREA / 10, -0.4, 0.0), ("opening", "openings"))
    assert small is not None and any("large" in t for t in small.pools[0]) and not any("medium" in t for t in small.pools[0])
    faint = _attributes("small", "darker", SMALL_AREA / 10, -0.4, 0.0, shown=0.01)
    assert measured(faint, ("scratch", "scratches"), noun_shaped=True) is None
    assert measured(faint, ("opening", "openings")) is not None  # an opening is no line wrapped in one outline


def test_classification_never_offers_two_names_of_one_kind_beside_each_other():
    """"Misaligned component" beside "Misalignment" (a hand audit of real capsules): two options that
    rule each other out leave a blind reader two to choose from. A generic name never stands beside
    a name of a kind that could be mistaken for its own; the category's own folder names may (a
    bottle's large and small breakage: its folders say which is which)."""
    from question_gen.drafts import _generic_alike
    from question_gen.knowledge import defect_kinds

    conflicts = _generic_alike(dict(defect_kinds()[1]), {"Broken large": "broken", "Broken small": "broken", "Contamination": "stain"})
    assert conflicts("Misalignment", "Misaligned component") and conflicts("Dent", "Warping")
    assert conflicts("Excess adhesive", "Contamination")  # a generic stain beside the category's own
    assert not conflicts("Broken large", "Broken small") and not conflicts("Crack", "Rust")
