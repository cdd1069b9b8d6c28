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
    data = {p.relative_to(ROOT).as_posix() for pattern in ("harness/suites/*.toml", "harness/protocols/*.toml", "harness/models/*.toml", "harness/data/**/*.toml", "harness/published/*.csv", "harness/published/robustmad/*.csv", "harness/published/*.toml", "question_gen/data/*.toml")
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


def _top_level_imports(path: Path) -> set[str]:
    """Modules a file imports when it is imported (not inside functions, not for type checking)."""
    names = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def test_the_root_holds_the_entry_and_the_schema_and_imports_have_no_cycle():
    assert sorted(p.name for p in (ROOT / "harness").glob("*.py")) == ["__init__.py", "cli.py", "errors.py", "schema.py"]
    modules = {}
    for path in [*ROOT.glob("harness/**/*.py"), *ROOT.glob("question_gen/**/*.py")]:
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        modules[name] = path
    graph = {name: {m for m in _top_level_imports(path) if m in modules and m != name} for name, path in modules.items()}
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
