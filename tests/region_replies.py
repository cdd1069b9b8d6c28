"""Real-looking GPT-4V-AD replies with what they mean: (reply, image score or None for unparsable,
region scores). Shared by the parser test and the before/after error-rate count. 10 regions exist."""

REGION_REPLIES = [
    # the format the prompt asks for, and its usual variations
    ("image anomaly score: 0.9; region 1: 0.9; region 3: 0.7.", 0.9, {1: 0.9, 3: 0.7}),
    ("Image anomaly score: 0.2.", 0.2, {}),
    ("**Image Anomaly Score**: 0.85\n- Region 2: 0.8\n- Region 7: 0.6", 0.85, {2: 0.8, 7: 0.6}),
    ("image anomaly score = 90%; region 4 = 85%", 0.9, {4: 0.85}),
    ("Image anomaly score - 0.7, Region 5 - 0.7, Region 6 - 0.4", 0.7, {5: 0.7, 6: 0.4}),
    ("image anomaly score: 0.8; regions 1, 3 and 5: 0.6", 0.8, {1: 0.6, 3: 0.6, 5: 0.6}),
    ("Sure! The image anomaly score is 0.75. Region 2 has a score of 0.7.", 0.75, {2: 0.7}),
    ("image anomaly score: 0.65\nregion 8: 0.65", 0.65, {8: 0.65}),
    ("Image anomaly score: .8; Region 3: .8", 0.8, {3: 0.8}),
    ("image anomaly score: 0.9; region 2: 0.3; region 2: 0.8", 0.9, {2: 0.8}),
    ("image anomaly score: 0.9; region 42: 0.9; region 2: 0.5", 0.9, {2: 0.5}),
    ("region 3: 0.7; region 1: 0.4", 0.7, {3: 0.7, 1: 0.4}),
    ("Image anomaly score: 0.0", 0.0, {}),
    ("image anomaly score: 0.9; anomalous regions: 2, 5", 0.9, {2: 0.9, 5: 0.9}),
    ("Overall anomaly score: 0.6. Region 4 shows a scratch (0.6).", 0.6, {4: 0.6}),
    # separators that used to be read as region ids
    ("image anomaly score: 1.0; region 2, 1.0", 1.0, {2: 1.0}),
    ("image anomaly score: 0.8; region 3, 0.8; region 9, 0.5", 0.8, {3: 0.8, 9: 0.5}),
    ("image anomaly score: 0.7, region 1 0.7", 0.7, {1: 0.7}),
    ("Image anomaly score: 0.85 | Region 6: 0.85 | Region 2: 0.3", 0.85, {6: 0.85, 2: 0.3}),
    # ranges and lists
    ("image anomaly score: 0.8; regions 3-5: 0.8", 0.8, {3: 0.8, 4: 0.8, 5: 0.8}),
    ("image anomaly score: 0.6; regions 2 to 4: 0.5", 0.6, {2: 0.5, 3: 0.5, 4: 0.5}),
    ("image anomaly score: 0.9; regions 1, 2 & 7: 0.9", 0.9, {1: 0.9, 2: 0.9, 7: 0.9}),
    ("image anomaly score: 0.5; region 3 - 0.5", 0.5, {3: 0.5}),
    # regions called normal are not anomalies
    ("Image anomaly score: 0.1. Region 5 appears normal.", 0.1, {5: 0.0}),
    ("image anomaly score: 0.0. Regions 2 and 4 are normal (0.0).", 0.0, {2: 0.0, 4: 0.0}),
    ("image anomaly score: 0.8; region 1: 0.8; region 2: normal", 0.8, {1: 0.8, 2: 0.0}),
    ("Image anomaly score: 0.7. Region 3: 0.7 (crack). Region 6 shows no anomaly.", 0.7, {3: 0.7, 6: 0.0}),
    ("The image appears normal; no anomalies detected.", 0.0, {}),
    ("All regions look normal. Image anomaly score: 0.05", 0.05, {}),
    # scales: rescaled only when the reply states them
    ("On a scale of 0 to 10: image anomaly score: 8; region 4: 7", 0.8, {4: 0.7}),
    ("image anomaly score: 8/10; region 2: 6/10", 0.8, {2: 0.6}),
    ("image anomaly score: 80 percent; region 1: 75 percent", 0.8, {1: 0.75}),
    ("Scores out of 100. Image anomaly score: 90; region 3: 85", 0.9, {3: 0.85}),
    ("image anomaly score: 0.9; region 4: 7", 0.9, {}),  # 7 with no scale: ambiguous, not used
    ("image anomaly score: 9; region 1: 8", None, {}),  # nothing usable
    ("image anomaly score: 1.5; region 2: 0.6", 0.6, {2: 0.6}),  # 1.5 unusable: the region score stands in
    # JSON
    ('{"image_anomaly_score": 0.6, "regions": {"2": 0.6, "9": 0.3}}', 0.6, {2: 0.6, 9: 0.3}),
    ('Answer: {"image anomaly score": 0.5, "regions": [{"region": 4, "score": 0.5}]}', 0.5, {4: 0.5}),
    ('```json\n{"image_anomaly_score": 0.9, "region 3": 0.9, "region 5": 0.2}\n```', 0.9, {3: 0.9, 5: 0.2}),
    ('{"overall_score": 0.4, "regions": [{"id": 7, "anomaly_score": 0.4}]}', 0.4, {7: 0.4}),
    # markdown and prose
    ("- **Image anomaly score:** 0.95\n- **Region 10:** 0.95\n- **Region 9:** 0.2", 0.95, {10: 0.95, 9: 0.2}),
    ("I see a dent. image anomaly score: 0.6; region 7: 0.6 (dent near the edge).", 0.6, {7: 0.6}),
    # nothing to read
    ("", None, {}),
    ("I cannot see any regions.", None, {}),
]
