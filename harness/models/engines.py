"""Managed inference engines: `vllm/<model>`, `sglang/<model>`, `transformers-serve/<model>`.

The engine's OpenAI-compatible server (harness/models/engines.toml) is started as a child process
on a free loopback port, with `--engine-args` passed through; iadbench waits until its health
endpoint answers, then evaluates through the openai/ backend (logprobs included where the server
gives them). The engine is stopped on every way out: the command's end or an error
(`stop_all()` from the CLI), Ctrl-C, SIGTERM (turned into a normal exit), and even a SIGKILL of
iadbench (the child is started with PR_SET_PDEATHSIG, so the kernel stops it when its parent dies).
Its process group is stopped, so engine workers go too. Its log goes to the run folder
(engine.log); its version and arguments to spec.json.
"""

from __future__ import annotations

import atexit
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
import urllib.request
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata, resources
from pathlib import Path

from harness.run.distributed import free_port
from harness.errors import ConfigError, FatalBackendError
from harness.models.base import GenerateRequest, GenerateResponse, ModelOptions

HOST = "127.0.0.1"
STOP_GRACE_S = 20.0
_RUNNING: list["ManagedEngine"] = []


@dataclass(frozen=True)
class EngineSpec:
    name: str
    description: str
    command: tuple[str, ...]
    package: str
    install: str
    health: str


@lru_cache(maxsize=1)
def engine_specs() -> dict[str, EngineSpec]:
    raw = tomllib.loads(resources.files("harness.models").joinpath("engines.toml").read_text())
    return {name: EngineSpec(name, e["description"], tuple(e["command"]), e["package"], e["install"], e["health"]) for name, e in raw.items()}


def engine_providers() -> tuple[str, ...]:
    """The model-name prefixes of managed engines (local models: no per-token price)."""
    return tuple(f"{name}/" for name in engine_specs())


def engine_version(spec: EngineSpec) -> str | None:
    try:
        return metadata.version(spec.package)
    except metadata.PackageNotFoundError:
        return None


def engine_argv(spec: EngineSpec, model: str, port: int, engine_args: str | None) -> list[str]:
    """The command line that starts the engine (its executable resolved beside this Python first)."""
    fill = {"model": model, "host": HOST, "port": str(port), "python": sys.executable}
    argv = [part.format(**fill) for part in spec.command] + shlex.split(engine_args or "")
    beside = Path(sys.executable).parent / argv[0]
    if beside.is_file():
        argv[0] = str(beside)
    elif shutil.which(argv[0]) is None:
        raise ConfigError(f"{spec.name}/: the {spec.name} engine is not installed here ({argv[0]!r} not found): {spec.install}")
    if spec.command[0] == "{python}" and engine_version(spec) is None:
        raise ConfigError(f"{spec.name}/: the {spec.name} engine is not installed in this Python: {spec.install}")
    return argv


def _die_with_parent() -> None:
    """In the child, before exec: the kernel sends SIGTERM when iadbench dies, even by SIGKILL."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the atexit and signal paths remain
        pass


def stop_all() -> None:
    """Stop every engine this process started (the CLI calls it on the way out)."""
    for engine in list(_RUNNING):
        engine.stop()


def _exit_on_sigterm() -> None:
    """SIGTERM ends Python without running atexit; make it a normal exit so engines are stopped."""
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, lambda number, frame: sys.exit(128 + number))


atexit.register(stop_all)


class ManagedEngine:
    """A model served by an engine this process starts; generation goes through openai/."""

    default_concurrency = 64  # engines batch continuously: keep them fed
    cacheable = True
    managed_engine = True
    reusable_across_runs = True

    def __init__(self, name: str, *, seed: int, options: ModelOptions, spec: EngineSpec) -> None:
        self.name, self.spec, self.seed, self.options = name, spec, seed, options
        self.model_id = name.split("/", 1)[1]
        version = engine_version(spec)
        self.cache_identity = f"{name}@{spec.name}-{version}|{options.engine_args or ''}"
        self.process: subprocess.Popen | None = None
        self.inner = None
        self.argv: list[str] = []
        self.log_path = Path(tempfile.gettempdir()) / f"iadbench-{spec.name}-{os.getpid()}-{id(self):x}.log"
        self.log_copies: list[Path] = []
        self.note = f"engine: {spec.name} {version or '(version unknown)'}, arguments: {options.engine_args or 'none'}"

    def ready(self) -> None:
        """Start the engine and wait until it answers (before any run folder exists)."""
        if self.process is not None:
            return
        port = free_port()
        self.argv = engine_argv(self.spec, self.model_id, port, self.options.engine_args)
        _exit_on_sigterm()
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_die_with_parent)
        _RUNNING.append(self)
        print(f"iadbench: starting {self.spec.name} on {HOST}:{port} (log: {self.log_path})", file=sys.stderr)
        self._wait_healthy(f"http://{HOST}:{port}")
        from harness.models.openai import OpenAIChatModel

        self.inner = OpenAIChatModel(f"openai/{self.model_id}", seed=self.seed, options=self.options.model_copy(update={"base_url": f"http://{HOST}:{port}/v1"}))

    def _wait_healthy(self, root: str) -> None:
        deadline = time.monotonic() + self.options.engine_startup_timeout_s
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                tail = self.log_path.read_text(errors="replace")[-1500:]
                self.stop()
                raise ConfigError(f"{self.spec.name} exited with code {code} while starting ({' '.join(self.argv)}); its log ends:\n{tail}")
            try:
                with urllib.request.urlopen(root + self.spec.health, timeout=2) as reply:
                    if reply.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.5)
        self.stop()
        raise ConfigError(f"{self.spec.name} did not answer {self.spec.health} within {self.options.engine_startup_timeout_s:.0f} s (--engine-startup-timeout); log: {self.log_path}")

    def attach_run_folder(self, path: Path) -> None:
        """The engine's log belongs in the run folder: copied there now and when the engine stops."""
        self.log_copies.append(Path(path) / "engine.log")
        self._copy_log()

    def _copy_log(self) -> None:
        for target in self.log_copies:
            if self.log_path.is_file() and target.parent.is_dir():
                shutil.copyfile(self.log_path, target)

    async def generate(self, request: GenerateRequest) -> GenerateResponse:
        if self.inner is None:
            self.ready()
        self._check_alive()
        response = await self.inner.generate(request)
        if response.error is not None:
            self._check_alive()  # a failure because the engine died stops the run, with its log
        if self.note not in response.notes:
            response.notes.append(self.note)
        return response

    def _check_alive(self) -> None:
        """An engine that exited mid-run answers nothing again: every request it would have held
        fails at once, as a stopped run with the engine's own last words, not retries until each
        question's deadline."""
        code = self.process.poll() if self.process is not None else None
        if code is not None:
            tail = self.log_path.read_text(errors="replace")[-800:] if self.log_path.is_file() else ""
            raise FatalBackendError(f"{self.spec.name} exited with code {code} during the run; its log ends:\n{tail}\nfix the cause, then continue with --resume")

    async def aclose(self) -> None:
        # The engine outlives one event loop (generation runs two); stop() ends it.
        if self.inner is not None:
            await self.inner.aclose()

    def stop(self) -> None:
        """Stop the engine's process group: SIGTERM, then SIGKILL after a grace period."""
        process, self.process = self.process, None
        if self in _RUNNING:
            _RUNNING.remove(self)
        if process is not None:
            try:
                if process.poll() is None:
                    os.killpg(process.pid, signal.SIGTERM)
                    process.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                pass
            except ProcessLookupError:
                pass
            try:  # whatever of the group is left (the server's own workers)
                os.killpg(process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            process.wait()
        self._copy_log()
        self.inner = None


def create_engine_model(name: str, *, seed: int, options: ModelOptions | None = None) -> ManagedEngine:
    provider = name.split("/", 1)[0]
    return ManagedEngine(name, seed=seed, options=options or ModelOptions(), spec=engine_specs()[provider])
