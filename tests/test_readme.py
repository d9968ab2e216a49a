"""The examples of ``README.md`` and ``docs/*.md`` run as written, and their links lead somewhere.

Every ```` ```python ```` block of a document runs, the document's blocks in
order in one shared namespace (a tutorial builds on its earlier blocks), in
a temporary working directory, with matplotlib's non-interactive Agg
backend. A ```` ```text ```` block that comes right after a python block (no
other code block between them) is that block's printed output, and must
match it exactly.

An HTML comment on the lines just before a block says how it runs:

- ``<!-- requires: torch, onnxruntime -->``: it needs these modules; where
  one is missing the block is skipped with that reason, and so is any
  later block that uses a name only a skipped block defines.
- ``<!-- no-run: <reason> -->``: it is never run, for the reason given (it
  needs something the reader has and the tests do not, such as a cluster).

Shell blocks (```` ```bash ````) are not run.
"""
import ast
import builtins
import contextlib
import dataclasses
import importlib.util
import io
import os
import re
import sys
import traceback
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

FENCE = re.compile(r"^```([\w+-]*)\s*$")
MARKER = re.compile(r"^<!--\s*(requires|no-run)\s*:\s*(.*?)\s*-->\s*$")

# Modules a block may import without declaring them: what `import nnfast` needs.
CORE_MODULES = {"nnfast", "numpy", "scipy"}
# The adapters that import an optional library of their own.
ADAPTER_NEEDS = {"nnfast.sklearn": "sklearn", "nnfast.onnx": "onnx", "nnfast.torch": "torch",
                 "nnfast.distributed": "distributed"}


@dataclasses.dataclass
class Block:
    """One ```python block of a document, with what its markers and output block say."""

    document: Path
    line: int  # of the opening fence, 1-based
    code: str
    requires: list = dataclasses.field(default_factory=list)
    no_run: str = None  # the stated reason, or None
    output: str = None  # the expected stdout, or None when the block has no output block

    @property
    def where(self):
        name = self.document.relative_to(ROOT) if self.document.is_relative_to(ROOT) else self.document.name
        return f"{name}:{self.line}"


@dataclasses.dataclass
class Outcome:
    status: str  # "passed", "failed" or "skipped"
    message: str = ""


def read_blocks(path):
    """The python blocks of the Markdown file ``path``, in order."""
    lines = path.read_text(encoding="utf-8").split("\n")
    blocks = []
    previous_fence = None  # the language of the code block before this one
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        language, start = match.group(1), i
        i += 1
        while i < len(lines) and not lines[i].startswith("```"):
            i += 1
        body = "\n".join(lines[start + 1:i]) + "\n"
        i += 1
        if language == "python":
            block = Block(path, start + 1, body)
            for kind, value in _markers(lines, start):
                if kind == "requires":
                    block.requires = [name.strip() for name in value.split(",") if name.strip()]
                else:
                    block.no_run = value
            blocks.append(block)
        elif language == "text" and previous_fence == "python":
            blocks[-1].output = body
        previous_fence = language
    return blocks


def _markers(lines, fence_index):
    """The (kind, value) of the marker comments on the lines just above a fence."""
    j = fence_index - 1
    while j >= 0 and not lines[j].strip():
        j -= 1
    while j >= 0:
        match = MARKER.match(lines[j].strip())
        if not match:
            break
        yield match.group(1), match.group(2)
        j -= 1


def _stored_and_loaded(statement):
    """The names a statement binds, and those it reads."""
    stored, loaded = set(), set()
    for node in ast.walk(statement):
        if isinstance(node, ast.Name):
            (loaded if isinstance(node.ctx, ast.Load) else stored).add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            stored.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            stored.add(node.name)
    return stored, loaded


def _names_from(code, unavailable):
    """The names of ``unavailable`` that ``code`` reads before binding them itself."""
    bound, needed = set(), set()
    for statement in ast.parse(code).body:
        stored, loaded = _stored_and_loaded(statement)
        needed |= (loaded - bound) & unavailable
        bound |= stored
    return needed


def _importable(module):
    """Whether ``module`` imports."""
    # Importing it, rather than asking importlib.util.find_spec, lets the import
    # hooks that wait for it (nnfast.sklearn's, for skl2onnx) see the import.
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def _run_block(block, namespace):
    """Run one block in ``namespace``: its Outcome."""
    stdout = io.StringIO()
    try:
        with contextlib.redirect_stdout(stdout):
            exec(compile(block.code, block.where, "exec"), namespace)
    except Exception:
        return Outcome("failed", f"{block.where} raised:\n{traceback.format_exc()}")
    if block.output is not None and stdout.getvalue().rstrip() != block.output.rstrip():
        return Outcome("failed", f"{block.where} printed\n{stdout.getvalue()}\nbut its output block says\n"
                                 f"{block.output}")
    return Outcome("passed")


def run_document(path, directory):
    """Run the python blocks of ``path`` in order, in ``directory``: one Outcome per block."""
    try:
        import matplotlib
    except ImportError:
        pass
    else:
        matplotlib.use("Agg")
    namespace = {"__name__": "__readme__"}
    # The tutorial's example seeds NumPy's global generator; other tests keep theirs.
    numpy_state = np.random.get_state()
    unavailable = {}  # name -> why the block that defines it was skipped
    outcomes = []
    failed_at = None
    cwd = os.getcwd()
    os.chdir(directory)
    try:
        for block in read_blocks(path):
            stored = set().union(*(_stored_and_loaded(s)[0] for s in ast.parse(block.code).body))
            missing = [name for name in block.requires if not _importable(name)]
            needed = _names_from(block.code, set(unavailable))
            if block.no_run is not None:
                outcome = Outcome("skipped", f"{block.where} is marked no-run: {block.no_run}")
            elif failed_at is not None:
                outcome = Outcome("skipped", f"{block.where} follows {failed_at}, which failed")
            elif missing:
                outcome = Outcome("skipped", f"{block.where} needs {', '.join(missing)}, not installed")
            elif needed:
                name = sorted(needed)[0]
                outcome = Outcome("skipped", f"{block.where} uses {name!r}, from a block skipped: "
                                             f"{unavailable[name]}")
            else:
                outcome = _run_block(block, namespace)
                if outcome.status == "failed":
                    failed_at = block.where
            if outcome.status == "skipped":
                unavailable.update(dict.fromkeys(stored, outcome.message))
            else:
                for name in stored:
                    unavailable.pop(name, None)
            outcomes.append(outcome)
    finally:
        os.chdir(cwd)
        np.random.set_state(numpy_state)
        _close_clusters(namespace)
        if "matplotlib.pyplot" in sys.modules:
            sys.modules["matplotlib.pyplot"].close("all")
    return outcomes


def _close_clusters(namespace):
    """Shut down the Dask clients and clusters an example left open, clients first."""
    leftovers = [value for value in namespace.values()
                 if type(value).__module__.startswith("distributed") and hasattr(value, "close")]
    for value in sorted(leftovers, key=lambda value: type(value).__name__ != "Client"):
        with contextlib.suppress(Exception):
            value.close()


CASES = [(document, index) for document in DOCUMENTS for index, _ in enumerate(read_blocks(document))]
_OUTCOMES = {}


@pytest.mark.parametrize("document, index", CASES,
                         ids=[f"{d.relative_to(ROOT)}-{b.line}" for d in DOCUMENTS for b in read_blocks(d)])
def test_example_runs_as_written(document, index, tmp_path_factory):
    if document not in _OUTCOMES:
        _OUTCOMES[document] = run_document(document, tmp_path_factory.mktemp(document.stem))
    outcome = _OUTCOMES[document][index]
    if outcome.status == "skipped":
        pytest.skip(outcome.message)
    if outcome.status == "failed":
        pytest.fail(outcome.message, pytrace=False)


def test_readme_has_examples_that_run():
    blocks = read_blocks(ROOT / "README.md")
    assert len(blocks) >= 10
    # A quick start that runs on nnfast's own dependencies and scikit-learn's data.
    assert blocks[0].no_run is None and blocks[0].output is not None
    assert sum(block.no_run is not None for block in blocks) <= 2


@pytest.mark.skipif(not hasattr(sys, "stdlib_module_names"), reason="needs Python 3.10's sys.stdlib_module_names")
@pytest.mark.parametrize("document", DOCUMENTS, ids=[str(d.relative_to(ROOT)) for d in DOCUMENTS])
def test_blocks_declare_the_optional_modules_they_import(document):
    allowed = CORE_MODULES | set(sys.stdlib_module_names) | set(dir(builtins))
    undeclared = []
    for block in read_blocks(document):
        for node in ast.walk(ast.parse(block.code)):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                modules = [node.module]
            else:
                continue
            for module in modules:
                needs = {module.split(".")[0]} - allowed
                needs |= {need for adapter, need in ADAPTER_NEEDS.items()
                          if module == adapter or module.startswith(adapter + ".")}
                undeclared += [f"{block.where}: {module} needs {need}" for need in needs - set(block.requires)]
    assert undeclared == []


def test_read_blocks_reads_markers_and_outputs(tmp_path):
    document = tmp_path / "example.md"
    document.write_text("Text.\n\n<!-- requires: torch, onnx -->\n```python\nprint(1)\n```\n\nIt prints\n\n"
                        "```text\n1\n```\n\n```bash\necho hi\n```\n\n```text\nhi\n```\n\n"
                        "<!-- no-run: needs your cluster -->\n```python\nx = 2\n```\n", encoding="utf-8")
    first, second = read_blocks(document)
    assert (first.line, first.code, first.requires, first.no_run, first.output) == (
        4, "print(1)\n", ["torch", "onnx"], None, "1\n")
    assert (second.line, second.requires, second.no_run, second.output) == (23, [], "needs your cluster", None)


def test_run_document_skips_what_depends_on_a_skipped_block(tmp_path):
    document = tmp_path / "example.md"
    document.write_text("```python\nprint(1 + 1)\n```\n```text\n2\n```\n"
                        "<!-- requires: no_such_module_anywhere -->\n```python\nmade = 1\n```\n"
                        "```python\nmade = 5\nprint(made)\n```\n```text\n5\n```\n"
                        "<!-- requires: no_such_module_anywhere -->\n```python\nother = 1\n```\n"
                        "```python\nprint(other)\n```\n", encoding="utf-8")
    outcomes = run_document(document, tmp_path)
    assert [outcome.status for outcome in outcomes] == ["passed", "skipped", "passed", "skipped", "skipped"]
    assert "needs no_such_module_anywhere, not installed" in outcomes[1].message
    assert "uses 'other', from a block skipped" in outcomes[4].message


def test_run_document_fails_on_a_wrong_output_or_an_exception(tmp_path):
    document = tmp_path / "example.md"
    document.write_text("```python\nprint(1 + 1)\n```\n```text\n3\n```\n```python\nprint(1)\n```\n",
                        encoding="utf-8")
    wrong, after = run_document(document, tmp_path)
    assert wrong.status == "failed" and "printed\n2\n" in wrong.message and "says\n3" in wrong.message
    assert after.status == "skipped" and "follows example.md:1, which failed" in after.message

    document.write_text("```python\nraise ValueError('boom')\n```\n", encoding="utf-8")
    (failed,) = run_document(document, tmp_path)
    assert failed.status == "failed" and "ValueError: boom" in failed.message


# -- links -------------------------------------------------------------------

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def anchors(path):
    """The anchors of the headings of a Markdown file, as GitHub makes them."""
    seen, result = {}, set()
    in_code = False
    for line in path.read_text(encoding="utf-8").split("\n"):
        if line.startswith("```"):
            in_code = not in_code
        match = None if in_code else re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if match:
            slug = re.sub(r"[^\w\- ]", "", match.group(1).lower()).replace(" ", "-")
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            result.add(slug if count == 0 else f"{slug}-{count}")
    return result


def links(path):
    """The link targets of a Markdown file, outside code blocks and code spans."""
    in_code = False
    for line in path.read_text(encoding="utf-8").split("\n"):
        if line.startswith("```"):
            in_code = not in_code
            continue
        if not in_code:
            yield from LINK.findall(re.sub(r"`[^`]*`", "", line))


def test_anchors_follow_githubs_rule():
    assert {"the-3-3-1-example", "using-nnfast-from-scikit-learn"} <= anchors(ROOT / "README.md")


@pytest.mark.parametrize("document", DOCUMENTS, ids=[str(d.relative_to(ROOT)) for d in DOCUMENTS])
def test_relative_links_lead_to_files_and_headings(document):
    broken = []
    for target in links(document):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        linked = (document.parent / file_part).resolve() if file_part else document
        if not linked.exists():
            broken.append(f"{target}: no file {linked}")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target}: no heading #{anchor} in {linked.name}")
    assert broken == []
