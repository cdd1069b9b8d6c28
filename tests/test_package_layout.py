"""The house's shape: no import cycle between harness.data and question_gen, no oversized module,
and a regular (non-editable) install that carries its prompts and data files."""

import pytest
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at its top or inside a function."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_harness_data_and_question_gen_do_not_import_each_other():
    data = [p for p in (ROOT / "harness" / "data").rglob("*.py")]
    generation = [p for p in (ROOT / "question_gen").rglob("*.py")]
    shared = [p for p in (ROOT / "harness" / "adsets").rglob("*.py")]
    assert data and generation and shared
    for path in data + shared:
        bad = {m for m in imported_modules(path) if m == "question_gen" or m.startswith("question_gen.")}
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}"
    for path in generation + shared:
        bad = {m for m in imported_modules(path) if m == "harness.data" or m.startswith("harness.data.")}
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


def test_no_module_is_past_400_lines():
    sizes = {p.relative_to(ROOT): len(p.read_text(encoding="utf-8").splitlines()) for folder in ("harness", "question_gen") for p in (ROOT / folder).rglob("*.py")}
    assert {p: n for p, n in sizes.items() if n > 400} == {}


@pytest.mark.slow  # 7 s: builds the wheel and installs it
def test_a_regular_install_carries_its_prompts_and_data(tmp_path):
    """pip wheel, then the wheel installed into a bare folder and run from elsewhere: the prompts
    and data files come from the installed package, not from this checkout."""
    import os
    import subprocess
    import sys
    import zipfile

    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q", "-w", str(wheels)], check=True, capture_output=True, timeout=600)
    wheel = next(wheels.glob("iadbench-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    prompts = {f"harness/prompts/{p.relative_to(ROOT / 'prompts').as_posix()}" for p in (ROOT / "prompts").rglob("*.j2")}
    data = {p.relative_to(ROOT).as_posix() for pattern in ("harness/suites/*.toml", "harness/protocols/*.toml", "harness/models/*.toml", "harness/data/**/*.toml", "harness/published/*.csv", "harness/published/robustmad/*.csv", "harness/published/*.toml", "harness/tasks/*/*.toml", "harness/tasks/robustmad/robustmad_judge.txt", "question_gen/data/*.toml")
            for p in ROOT.glob(pattern)}
    assert prompts and data and (prompts | data) <= names, sorted((prompts | data) - names)
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)], check=True, capture_output=True, timeout=300)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = os.environ | {"PYTHONPATH": str(site), "IADBENCH_CACHE": str(tmp_path / "cache")}
    env.pop("IADBENCH_PROMPTS_DIR", None)
    where = subprocess.run([sys.executable, "-c", "import harness.asking.prompting as p; print(p.__file__); print(p.prompts_dir())"], cwd=elsewhere, env=env, capture_output=True, text=True, check=True)
    module_file, prompts_folder = where.stdout.split()
    assert module_file.startswith(str(site)) and prompts_folder == str(site / "harness" / "prompts")
    result = subprocess.run([sys.executable, "-m", "harness.cli", "eval", "--model", "random", "--limit", "20", "--quiet", "--run-id", "w"], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "20/20 questions answered" in result.stdout and (elsewhere / "runs" / "w" / "summary.json").is_file()


def _imports(path: Path, name: str) -> set[str]:
    """Every module a file may import when it runs: at its top, inside functions (lazy imports),
    and the "module:attribute" strings a registry imports by (a provider, a task kind); not what
    only a type checker reads (under `if TYPE_CHECKING:`)."""
    import re

    tree = ast.parse(path.read_text(encoding="utf-8"))
    type_only = {id(node) for block in ast.walk(tree) if isinstance(block, ast.If) and getattr(block.test, "id", getattr(block.test, "attr", None)) == "TYPE_CHECKING"
                 for statement in block.body for node in ast.walk(statement)}
    names = set()
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and re.fullmatch(r"(harness|question_gen)(\.\w+)+:\w+", node.value):
            names.add(node.value.split(":")[0])
    return names


def test_the_root_holds_the_entry_and_the_schema_and_imports_have_no_cycle():
    assert sorted(p.name for p in (ROOT / "harness").glob("*.py")) == ["__init__.py", "cli.py", "errors.py", "schema.py"]
    modules = {}
    for path in [*ROOT.glob("harness/**/*.py"), *ROOT.glob("question_gen/**/*.py")]:
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        modules[name] = path
    graph = {name: {m for m in _imports(path, name) if m in modules and m != name} for name, path in modules.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(name: str) -> list[str] | None:
        state[name] = 1
        stack.append(name)
        for other in sorted(graph[name]):
            if state.get(other) == 1:
                return stack[stack.index(other):] + [other]
            if other not in state and (cycle := visit(other)):
                return cycle
        stack.pop()
        state[name] = 2
        return None

    for name in sorted(graph):
        if name not in state:
            cycle = visit(name)
            assert cycle is None, " -> ".join(cycle)


def test_one_folder_per_task_kind_and_kinds_py_the_shared_room():
    """A kind's task, data, parsing, scoring, tables and report parts live in its own package; the
    shared rooms are the interface (kinds.py), the registry that names the kinds, and the re-scoring
    every kind's summary uses."""
    tasks = ROOT / "harness" / "tasks"
    assert sorted(p.name for p in tasks.iterdir() if p.is_dir() and (p / "__init__.py").is_file()) == ["bbox", "gpt4vad", "mcq", "robustmad"]
    assert sorted(p.name for p in tasks.glob("*.py")) == ["__init__.py", "kinds.py", "registry.py", "rescore.py"]
    from harness.tasks.registry import _FACTORIES

    for name, factory in _FACTORIES.items():  # each built-in kind is a class in its own package
        module = factory.split(":")[0]
        assert module.startswith("harness.tasks.") and module.count(".") == 3, (name, factory)
