"""RobustMAD: its multiple-choice and open-answer kinds, its files, its families' protocols, its parser, scorer, judge and CSVs."""
