"""Real-looking box replies and how they must be read (harness/tasks/bbox/parsing.py).

Each row: (reply, format, expected boxes in original pixels or None for unreadable, said_no_defect,
a reason that must be noted or ""). The image is 200×100 px (width × height); in the pixel format it
was sent at 224×112 (qwen-vl-utils' multiples of 28)."""

ORIGINAL = (200, 100)
SENT = (224, 112)

# norm1000: x × 0.2, y × 0.1; pixels: x × 200/224, y × 100/112
REPLIES = [
    # JSON in the model family's own shape
    ('[{"bbox_2d": [112, 56, 224, 112], "label": "scratch"}]', "qwen2.5-vl", [(100.0, 50.0, 200.0, 100.0)], False, ""),
    ('```json\n[\n  {"bbox_2d": [0, 0, 112, 56], "label": "defect"}\n]\n```', "qwen2.5-vl", [(0.0, 0.0, 100.0, 50.0)], False, ""),
    ('[{"bbox": [100, 200, 300, 400]}]', "norm1000", [(20.0, 20.0, 60.0, 40.0)], False, ""),
    ('{"bbox": [100, 200, 300, 400], "label": "crack"}', "norm1000", [(20.0, 20.0, 60.0, 40.0)], False, ""),
    ('[[100, 200, 300, 400], [500, 500, 600, 700]]', "norm1000", [(20.0, 20.0, 60.0, 40.0), (100.0, 50.0, 120.0, 70.0)], False, ""),
    ('{"boxes": [{"x1": 0, "y1": 0, "x2": 1000, "y2": 1000}]}', "norm1000", [(0.0, 0.0, 200.0, 100.0)], False, ""),
    ('{"defects": [{"box": [250, 250, 750, 750]}]}', "norm1000", [(50.0, 25.0, 150.0, 75.0)], False, ""),
    ('Here are the defects:\n[{"bbox": [100, 200, 300, 400], "label": "dent"}]\nLet me know if you need more.', "norm1000", [(20.0, 20.0, 60.0, 40.0)], False, ""),
    ('[{"bbox_2d": [112, 56, 224, 112]}, {"bbox_2d": [0, 0, 28, 28]}]', "qwen2.5-vl", [(100.0, 50.0, 200.0, 100.0), (0.0, 0.0, 25.0, 25.0)], False, ""),
    ('[{"bbox": [0.1, 0.2, 0.3, 0.4]}]', "norm1", [(20.0, 20.0, 60.0, 40.0)], False, ""),
    # fractions in a 0-1000 format are read as fractions, and said
    ('[{"bbox": [0.1, 0.2, 0.3, 0.4]}]', "norm1000", [(20.0, 20.0, 60.0, 40.0)], False, "within 0..1"),
    # liberties: swapped corners, clipping, empty boxes
    ('[{"bbox": [300, 400, 100, 200]}]', "norm1000", [(20.0, 20.0, 60.0, 40.0)], False, "corners swapped"),
    ('[{"bbox": [-50, -20, 1200, 500]}]', "norm1000", [(0.0, 0.0, 200.0, 50.0)], False, "clipped"),
    ('[{"bbox_2d": [10, 10, 10, 50]}]', "qwen2.5-vl", [], False, "empty box dropped"),
    ('[{"bbox_2d": [300, 10, 400, 50]}]', "qwen2.5-vl", [], False, "empty box dropped"),
    # not JSON
    ("The defect is at [100, 200, 300, 400].", "norm1000", [(20.0, 20.0, 60.0, 40.0)], False, ""),  # a JSON list inside prose
    ("Bounding box: (100, 200, 300, 400)", "norm1000", [(20.0, 20.0, 60.0, 40.0)], False, "bracketed numbers"),
    ("The scratch spans from (100, 200) to (300, 400).", "norm1000", [(20.0, 20.0, 60.0, 40.0)], False, "corner pairs"),
    ("x1,y1,x2,y2 = 100,200,300,400", "norm1000", [(20.0, 20.0, 60.0, 40.0)], False, "comma-separated"),
    ("Defect 1: [100, 200, 300, 400]\nDefect 2: [500, 500, 600, 700]", "norm1000", [(20.0, 20.0, 60.0, 40.0), (100.0, 50.0, 120.0, 70.0)], False, "bracketed"),
    ("<ref>crack</ref><box>(100,200),(300,400)</box>", "norm1000", [(20.0, 20.0, 60.0, 40.0)], False, "corner pairs"),
    ('[{"bbox": [100.5, 200.25, 300.75, 400.5]}]', "norm1000", [(20.1, 20.025, 60.15, 40.05)], False, ""),
    # no defect, said in many ways: an empty, readable answer
    ("[]", "norm1000", [], True, ""),
    ("```json\n[]\n```", "qwen2.5-vl", [], True, ""),
    ("No defects were found in this image.", "norm1000", [], True, ""),
    ("The object looks normal.", "norm1000", [], True, ""),
    ("None", "norm1000", [], True, ""),
    ("There is no visible defect; the screw appears defect-free.", "norm1000", [], True, ""),
    ("no anomaly", "qwen2.5-vl", [], True, ""),
    # unreadable: refusals and prose without boxes
    ("I'm sorry, I can't help with locating objects in images.", "norm1000", None, False, "refusal"),
    ("I cannot determine the location.", "norm1000", None, False, "refusal"),
    ("There is a scratch near the top left of the part.", "norm1000", None, False, "no boxes"),
    ("", "norm1000", None, False, "no boxes"),
    ('[{"label": "scratch"}]', "norm1000", None, False, "no boxes"),
]
