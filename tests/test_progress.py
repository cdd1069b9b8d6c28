"""The progress line: rate, ETA and problems so far."""

import io

from harness.run.progress import Progress


def test_progress_line_reports_rate_eta_and_problems():
    stream = io.StringIO()
    progress = Progress(10, already_done=2, stream=stream)
    progress._started -= 2.0  # pretend two seconds have passed
    for outcome in ({"error": True, "answered": False}, {"error": False, "answered": False}, {"error": False, "answered": True}):
        progress.update(**outcome)
    line = progress.line()
    assert line.startswith("[iadbench] 5/10 ( 50.0%)")
    assert "errors 1" in line and "unparsed 1" in line
    rate = float(line.split("q/s")[0].split()[-1])
    assert 1.0 < rate < 1.6  # 3 answered in about 2 s (the 2 resumed ones do not count)
    assert "ETA 00:00:0" in line  # 5 left at 1.5/s: about 3 s
    for _ in range(5):
        progress.update(error=False, answered=True)
    assert stream.getvalue().strip().endswith("errors 1  unparsed 1")  # the final line is always written
