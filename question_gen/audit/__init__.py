"""The audit of a question set (checks.py, run.py) and the page to review it by eye (review.py)."""
