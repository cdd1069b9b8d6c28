"""The run folder: runs/<id>/spec.json, samples.jsonl (append-only), summary.json.

samples.jsonl gets one line per finished question, written and flushed as it arrives, so a run
killed at any moment keeps every sample it finished. On resume, a last line cut off mid-write is
removed (its question is simply asked again); any other damage is an error naming the line.
"""

from __future__ import annotations

import os
import re
from contextlib import contextmanager
from functools import lru_cache
from datetime import datetime, timezone
from pathlib import Path
from typing import IO

from pydantic import TypeAdapter, ValidationError

from harness.errors import RunFolderError
from harness.storage.files import model_json, write_json_atomically
from harness.storage.runfiles import check_no_links, inside_folder, open_inside, read_inside
from harness.run.identity import answer_config, settings_digest
from harness.schema import RunSpec, RunSummary, SampleResult

SPEC, SAMPLES, SUMMARY = "spec.json", "samples.jsonl", "summary.json"


def _warn(message: str) -> None:
    import sys

    print(f"iadbench: warning: {message}", file=sys.stderr)


def new_run_id(model: str, suite: str, now: datetime | None = None, digest: str = "") -> str:
    """Time to the millisecond, model, suite (or data) and a short digest of the spec: runs started
    in the same second with other settings (a seed loop) get their own folders."""
    moment = now or datetime.now(timezone.utc)
    stamp = moment.strftime("%Y%m%d-%H%M%S") + f"{moment.microsecond // 1000:03d}"
    slug = re.sub(r"[^A-Za-z0-9.]+", "-", model).strip("-")[:60]
    return f"{stamp}_{slug}_{suite}" + (f"_{digest[:6]}" if digest else "")


def check_run_id(run_id: str) -> str:
    """A --run-id names one folder inside --runs-dir: no path separators, no '..'."""
    if not run_id or "/" in run_id or "\\" in run_id or run_id.startswith(".") or ".." in run_id:
        raise RunFolderError(f"--run-id {run_id!r}: a run id names one folder inside --runs-dir; use letters, digits, '-', '_' and '.', with no '/', '\\' or '..'")
    return run_id


SHARDS = "shards"
LOCK = ".lock"
ANSWERS_CONFIG = "answers_config.json"
def shard_block(total: int, shard: tuple[int, int]) -> range:
    """The ordinals shard (index, count) answers: a contiguous block, so the questions about one
    image (adjacent in a question set) stay in one process and keep batching together."""
    index, count = shard
    return range(total * index // count, total * (index + 1) // count)


class RunFolder:
    def __init__(self, path: Path, samples_name: str = SAMPLES) -> None:
        self.path = path
        self.samples_name = samples_name
        self._digest: str | None = None
        self.samples_path = inside_folder(path, samples_name)

    def shard(self, index: int, count: int) -> "RunFolder":
        """A view of this run whose samples go to shards/<index>-of-<count>.jsonl, so processes
        never write one file; `merge_shards` folds them into samples.jsonl."""
        inside_folder(self.path, SHARDS).mkdir(exist_ok=True)
        return RunFolder(self.path, f"{SHARDS}/{index}-of-{count}.jsonl")

    def merge_shards(self, sample_type: type = SampleResult) -> int:
        """Append every shard's samples that samples.jsonl lacks, then delete the shard file.
        Safe to repeat after a kill at any point: a sample already merged is never added twice."""
        shard_dir = self.path / SHARDS
        if not shard_dir.is_dir():
            return 0
        known = {s.question_id for s in self.read_samples(repair=True, sample_type=sample_type)}
        added = 0
        with self.sample_writer() as writer:
            for shard_file in sorted(shard_dir.glob("*.jsonl")):
                for sample in RunFolder(self.path, f"{SHARDS}/{shard_file.name}").read_samples(repair=True, sample_type=sample_type):
                    if sample.question_id not in known:
                        writer.write(sample)
                        known.add(sample.question_id)
                        added += 1
        for shard_file in shard_dir.glob("*.jsonl"):  # only after the merged lines reached the disk
            shard_file.unlink()
        self._merge_shard_notes(shard_dir)
        return added

    def write_shard_notes(self, index: int, count: int, notes: list[str]) -> None:
        """A shard process's backend notes (it must not rewrite spec.json, which N processes share)."""
        if notes:
            write_json_atomically(self.path / SHARDS / f"{index}-of-{count}.notes.json", notes)

    def _merge_shard_notes(self, shard_dir: Path) -> None:
        """Fold the shards' notes into spec.json, as a one-process run records them; then leave no
        empty shards/ folder behind."""
        import json

        notes_files = sorted(shard_dir.glob("*.notes.json"))
        if notes_files:
            spec = self.spec()
            notes = list(spec.notes)
            for path in notes_files:
                notes += [n for n in json.loads(read_inside(self.path, path.relative_to(self.path))) if n not in notes]
            self.update_spec(spec.model_copy(update={"notes": notes}))
            for path in notes_files:
                path.unlink()
        if not any(shard_dir.iterdir()):
            shard_dir.rmdir()

    @classmethod
    def create(cls, runs_dir: Path, spec: RunSpec) -> "RunFolder":
        path = runs_dir / spec.run_id
        if path.exists():
            raise RunFolderError(f"{path} already exists; pass --resume {path} to continue it or choose another --run-id")
        if runs_dir.exists() and not runs_dir.is_dir():
            raise RunFolderError(f"--runs-dir {runs_dir} is a file, not a folder; name a folder (it is made if missing)")
        try:
            path.mkdir(parents=True)
        except OSError as error:
            raise RunFolderError(f"cannot make the run folder {path} ({error.strerror or error}); choose a --runs-dir you can write to") from None
        folder = cls(path)
        try:
            write_json_atomically(path / SPEC, spec.model_dump(mode="json"))
            write_json_atomically(path / ANSWERS_CONFIG, answer_config(spec))
            (path / SAMPLES).touch()
        except OSError as error:
            import shutil

            shutil.rmtree(path, ignore_errors=True)  # a run that could not start leaves no half-made folder
            raise RunFolderError(f"cannot write the run folder {path} ({error.strerror or error}); free space or choose another --runs-dir") from None
        return folder

    def check_answer_config(self, spec: RunSpec) -> None:
        """Refuse to resume with settings that change answers (an edited spec.json)."""
        changed = self.answer_config_changes(spec)
        if changed:
            raise RunFolderError(f"{self.path / SPEC} was changed since the run's answers were made ({'; '.join(changed)}); restore it, or start a new run with those settings")

    def answer_config_changes(self, spec: RunSpec) -> list[str]:
        """The answer-deciding settings spec.json holds unlike answers_config.json ("seed: 0 → 3")."""
        recorded_path = self.path / ANSWERS_CONFIG
        if not os.path.lexists(recorded_path):  # runs made before this file existed
            return []
        import json

        try:
            recorded = json.loads(read_inside(self.path, ANSWERS_CONFIG))
        except ValueError:
            recorded = None
        if not isinstance(recorded, dict):
            raise RunFolderError(f"{recorded_path}: not the settings file iadbench wrote (damaged or edited); restore it, or start a new run")
        current = answer_config(spec)
        # a field newer than the run's record (runs made before it was recorded) cannot have changed
        return [f"{k}: {recorded.get(k)!r} → {current.get(k)!r}" for k in current if k in recorded and recorded[k] != current[k]]

    @contextmanager
    def lock(self, *, shared: bool = False):
        """One writer per run, readers only while no one writes: eval and score hold it exclusively
        (a second eval --resume, or a score during an eval, is refused instead of writing the same
        files twice); report holds it shared, so it never reads a summary half rewritten."""
        try:
            import fcntl
        except ImportError:  # no advisory locks on this platform
            yield
            return
        try:
            handle = open_inside(self.path, LOCK, "a", linked_ok=True)  # a link planted as .lock is refused, never created or followed
        except OSError as error:
            if shared:  # a read-only run folder (someone else's, an archive): nobody writes it here either
                yield
                return
            raise RunFolderError(f"cannot lock {self.path} ({error.strerror or error}); is the run folder writable?") from None
        with handle:
            try:
                fcntl.flock(handle, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
            except BlockingIOError:
                doing = "read" if shared else "written"
                raise RunFolderError(f"{self.path} is being written by another iadbench process, so it cannot be {doing} now; wait for it to finish (or stop it), then try again") from None
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    @classmethod
    def open(cls, path: Path) -> "RunFolder":
        if not os.path.lexists(path / SPEC):
            raise RunFolderError(f"{path}: not a run folder (no {SPEC}); pass the folder printed when the run started")
        check_no_links(path)  # every file read or written below is then the folder's own
        return cls(path)

    def spec(self) -> RunSpec:
        try:
            return RunSpec.model_validate_json(read_inside(self.path, SPEC))
        except ValidationError as error:
            raise RunFolderError(f"{self.path / SPEC}: not a valid run spec ({error.error_count()} problems, first: {error.errors()[0]['msg']}); restore it from the run's answers_config.json or start a new run") from None
        except OSError as error:
            raise RunFolderError(f"cannot read {self.path / SPEC} ({error.strerror or error})") from None

    def read_samples(self, *, repair: bool = False, sample_type: type = SampleResult) -> list:
        """The finished samples (below), refused as a whole when any was made under other settings
        than spec.json records: one run folder never mixes two models, protocols or question sets."""
        samples = self._read_samples(repair=repair, sample_type=sample_type)
        self.check_belongs(samples)
        return samples

    def check_belongs(self, samples: list) -> None:
        """Every sample's settings digest is the spec's (a sample written before digests: none)."""
        expected = self.settings_digest()
        foreign = [s for s in samples if getattr(s, "settings_digest", None) not in (None, expected)]
        if expected is not None and foreign:
            raise self.foreign_answers(len(foreign), len(samples), foreign[0].question_id, {s.model for s in foreign})

    def foreign_answers(self, count: int, total: int, first: str, models: set[str]) -> RunFolderError:
        spec = self.spec()
        others = sorted(models - {spec.model})
        said = f" (their model: {', '.join(map(repr, others))}; spec.json: {spec.model!r})" if others else ""
        changed = self.answer_config_changes(spec)  # answers_config.json, when still there, names what changed
        said += f" ({'; '.join(changed)})" if changed else ""
        return RunFolderError(f"{self.samples_path}: {count} of {total} answers were made under other settings than {self.path / SPEC} records{said}, "
                              f"first {first!r}: spec.json was edited or answers of another run were added; restore spec.json"
                              + (f" ({ANSWERS_CONFIG} holds the settings the run was made with)" if os.path.lexists(self.path / ANSWERS_CONFIG) else "")
                              + " or start a new run")

    def settings_digest(self) -> str | None:
        if self._digest is None and os.path.lexists(self.path / SPEC):
            self._digest = settings_digest(self.spec())
        return self._digest

    def _read_samples(self, *, repair: bool = False, sample_type: type = SampleResult) -> list:
        """All finished samples, in file order. A line that is not a valid sample (damaged, or
        holding a value its schema refuses) or that repeats a question is named on stderr and
        left out, so every other answer stays usable and its question counts as unanswered. With
        `repair` (a resume) such lines move to samples.rejected.jsonl, so the question is asked
        again; a last line cut off by a kill is simply dropped."""
        path = self.samples_path
        if not os.path.lexists(path):
            return []
        try:
            data = read_inside(self.path, self.samples_name)
        except OSError as error:
            raise RunFolderError(f"cannot read {path} ({error.strerror or error})") from None
        lines = data.splitlines(keepends=True)
        whole = _all_valid(lines, sample_type)
        if whole is not None:  # the usual case, validated in one pass; else line by line below, to name what is wrong
            return whole
        samples: list = []
        seen: set[str] = set()
        kept: list[bytes] = []
        rejected: list[bytes] = []
        changed = False
        for number, line in enumerate(lines, start=1):
            complete = line.endswith(b"\n")
            if not line.strip():
                changed = True
                continue
            try:
                sample = sample_type.model_validate_json(line)
            except ValidationError as error:
                changed = True
                if complete or number < len(lines):
                    rejected.append(line if complete else line + b"\n")
                    _warn(f"{path}: line {number} is not a valid sample ({error.errors()[0]['msg'] if error.errors() else error}); left out, its question counts as unanswered"
                          + ("; moved to samples.rejected.jsonl and asked again" if repair else ""))
                continue  # else: the write in flight when the run was killed
            if sample.question_id in seen:
                changed = True
                rejected.append(line if complete else line + b"\n")
                _warn(f"{path}: line {number} repeats question {sample.question_id!r}; the first answer is kept")
                continue
            seen.add(sample.question_id)
            samples.append(sample)
            changed |= not complete
            kept.append(line if complete else line + b"\n")
        if repair and changed:
            if rejected:
                with open_inside(self.path, "samples.rejected.jsonl", "ab") as handle:
                    handle.writelines(rejected)
            self._rewrite_samples(kept)
        return samples

    def _rewrite_samples(self, lines: list[bytes]) -> None:
        """samples.jsonl replaced whole (temp file, fsync, rename): a kill leaves the old or the new."""
        path = self.samples_path
        temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        try:
            with open_inside(self.path, temporary.relative_to(self.path), "wb") as handle:
                handle.writelines(lines)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        except BaseException as error:
            temporary.unlink(missing_ok=True)
            if isinstance(error, OSError):
                raise RunFolderError(f"cannot rewrite {path} ({error.strerror or error}); it is unchanged: free space, then resume") from None
            raise

    def update_spec(self, spec: RunSpec) -> None:
        write_json_atomically(self.path / SPEC, spec.model_dump(mode="json"))

    def drop_failed_samples(self, sample_type: type = SampleResult) -> int:
        """For --retry-errors: rewrite samples.jsonl without the samples whose backend call failed,
        so they are asked again and the file never holds two answers to one question."""
        samples = self.read_samples(repair=True, sample_type=sample_type)
        kept = [s for s in samples if s.parse_status != "error"]
        if len(kept) == len(samples):
            return 0
        self._rewrite_samples([(model_json(s) + "\n").encode() for s in kept])
        return len(samples) - len(kept)

    def sample_writer(self) -> "SampleWriter":
        return SampleWriter(self.path, self.samples_name, self.settings_digest())

    def write_summary(self, summary: RunSummary) -> None:
        try:
            write_json_atomically(self.path / SUMMARY, summary.model_dump(mode="json"))
        except OSError as error:
            raise RunFolderError(f"cannot write {self.path / SUMMARY} ({error.strerror or error}); the answers are all in samples.jsonl: free space, then iadbench score {self.path}") from None

    def summary(self) -> RunSummary | None:
        """summary.json, or None when there is none yet. One that cannot be read is named and taken
        as none: the answers are in samples.jsonl, and `iadbench score` writes it again."""
        path = self.path / SUMMARY
        if not os.path.lexists(path):
            return None
        try:
            return RunSummary.model_validate_json(read_inside(self.path, SUMMARY))
        except (ValidationError, OSError) as error:
            _warn(f"{path} cannot be read ({type(error).__name__}); taken as missing: iadbench score {self.path} writes it again from the answers")
            return None


class SampleWriter:
    """Appends one JSON line per sample and flushes it to the OS before returning."""

    def __init__(self, folder: Path, name: str, digest: str | None = None) -> None:
        self._path = path = folder / name
        self._digest = digest
        self._failed = False
        try:
            self._handle: IO[str] = open_inside(folder, name, "a")  # a samples.jsonl linked elsewhere is refused, never appended to
        except OSError as error:
            raise RunFolderError(f"cannot open {path} for writing ({error.strerror or error}); check the run folder's permissions and free space") from None

    def write(self, sample: SampleResult) -> None:
        if self._digest is not None and "settings_digest" in type(sample).model_fields and sample.settings_digest != self._digest:
            sample = sample.model_copy(update={"settings_digest": self._digest})  # which run's answer this is
        try:
            self._handle.write(model_json(sample) + "\n")
            self._handle.flush()
        except OSError as error:
            self._failed = True
            # A line cut short by a full disk is removed on resume; everything before it is kept.
            raise RunFolderError(f"cannot write {self._path} ({error.strerror or error}); every answer before this one is saved: free space, then resume the run") from None

    def close(self) -> None:
        try:
            if not self._failed:
                self._handle.flush()
                os.fsync(self._handle.fileno())
        except OSError:
            pass  # a failed write was already reported; closing must not raise a second error
        finally:
            try:
                self._handle.close()
            except OSError:
                pass

    def __enter__(self) -> "SampleWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@lru_cache(maxsize=8)
def _list_adapter(sample_type: type) -> TypeAdapter:
    return TypeAdapter(list[sample_type])  # type: ignore[valid-type]


def _all_valid(lines: list[bytes], sample_type: type) -> list | None:
    """Every line a whole, valid sample of a distinct question: the samples (one validation of the
    whole file, several times faster than one per line at 40,000 answers); else None."""
    if not lines or not all(line.endswith(b"\n") and line.strip() for line in lines):
        return None
    try:
        samples = _list_adapter(sample_type).validate_json(b"[" + b",".join(line.strip() for line in lines) + b"]")
    except ValidationError:
        return None
    return samples if len({s.question_id for s in samples}) == len(samples) else None
