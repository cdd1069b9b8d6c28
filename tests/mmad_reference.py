"""A plain, independent rendering of MMAD's official scoring protocol (notes/mmad-protocol.md),
written for cross-checking `harness.metrics.accuracy.mmad_compat_table`. Deliberately naive: a
for-loop that removes records from the list it iterates, as the protocol describes."""


def reference_mmad_scores(answers, normal_flag="good"):
    answers = list(answers)
    datasets, types = [], []
    for a in answers:
        t = a["question_type"]
        t = "Object Analysis" if t in ("Object Structure", "Object Details") else t
        if a["image"].split("/")[0] not in datasets:
            datasets.append(a["image"].split("/")[0])
        if t not in types:
            types.append(t)
    stats = {(d, t): [0, 0] for d in datasets for t in types}
    det = {(d, n): [0, 0] for d in datasets for n in (True, False)}
    for a in answers:  # noqa: B020 - mutating while iterating IS the protocol
        t = a["question_type"]
        t = "Object Analysis" if t in ("Object Structure", "Object Details") else t
        d = a["image"].split("/")[0]
        if a["correct_answer"] not in "ABCDE" or a["gpt_answer"] not in list("ABCDE"):
            answers.remove(a)
            continue
        stats[d, t][0] += 1
        stats[d, t][1] += a["correct_answer"] == a["gpt_answer"]
        if t == "Anomaly Detection":
            det[d, normal_flag in a["image"]][0] += 1
            det[d, normal_flag in a["image"]][1] += a["correct_answer"] == a["gpt_answer"]
    table = {}
    for d in datasets:
        row = {}
        na = det[d, True][1] / det[d, True][0] if det[d, True][0] else 0
        aa = det[d, False][1] / det[d, False][0] if det[d, False][0] else 0
        for t in types:
            total, correct = stats[d, t]
            row[t] = (correct / total if total else 0) * 100
            if t == "Anomaly Detection":
                row[t] = (na + aa) / 2 * 100
        s = 0.0
        for t in types:
            s += row[t]
        row["Average"] = s / len(types)
        row["Overkill"], row["Miss"] = (1 - na) * 100, (1 - aa) * 100
        table[d] = row
    return table
