"""The synthetic set's version, apart from the writer (which imports scipy): the cached set's folder
name holds it, so a changed generator never serves an old set."""

# 2: question sets carry domain_knowledge.json; 3: taxonomy names, object questions for every
# category, length-balanced distractors; 4: attributes read from the pixels with margins, the
# generator's own audit, answer letters balanced per subtask; 5: foreground against the border, counted
# marks, distractors redrawn while a blind strategy wins (question_gen/shortcut_filter.py); 6: Defect
# Analysis distractors only from kinds that can occur on the object, its key prior held
GENERATOR_VERSION = 6
