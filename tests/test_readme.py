"""The README and the pages of ``docs/`` say what the code does: their examples run as written.

* Every ```python block of README.md runs, and so does every ```python block of
  ``docs/*.md`` (``docs/validation.md`` is generated and holds none).
* Every ``chestct ...`` line of the README's ```bash blocks runs, through the same
  ``main`` the installed ``chestct`` command calls; the only other lines allowed there
  are the two set-up commands (``python3 -m venv ... && pip install ...``), which CI's
  own run covers (``.ci/run``), and the test one must be exactly what CI runs.
* The examples run in a scratch folder holding a link ``sample_data`` to the bundled
  sample trial, so their ``sample_data/...`` paths work unchanged and their outputs
  (always under ``out/``) land in the scratch folder, never in the repository.
  ``out/demo/scores.csv`` (what the set-up command's ``chestct demo`` writes: 36 scans,
  too slow here) is stood in for by a table of the same columns built from
  ``sample_data/truth.csv``.  Placeholder paths of ``docs/`` (``exports/``,
  ``path/to/series``, ``ct.nii.gz``) are replaced by real files: the sample trial, or
  ``../shared/data`` (skipped when absent).
* The README is at most :data:`MAX_README_LINES` lines, every relative link of the
  README and of ``docs/`` points to a file (and heading) that exists, and every column
  ``chestct score`` writes is named in ``docs/outputs.md``.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
from pathlib import Path
from typing import Iterator

import pytest

from tests.conftest import shared_path

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DOCS = REPO / "docs"
SAMPLE_DATA = REPO / "sample_data"
#: The issue's limit: a README a newcomer reads in ten minutes.
MAX_README_LINES = 250
#: Pages of docs/ written by the validation scripts, not by hand.
GENERATED_DOCS = ("validation.md",)
#: A sample-trial series (P05, day 0: the demo's worst-read scan) for "path/to/series".
SAMPLE_SERIES = ("P05", "1.2.826.0.1.3680043.8.498.53597089712040304890437483138157195133",
                 "1.2.826.0.1.3680043.8.498.68168345369781276095607530875735082048")


def _blocks(path: Path, language: str) -> list[str]:
    """The fenced code blocks of one language in a Markdown file, in order."""
    return re.findall(rf"^```{language}\n(.*?)^```", path.read_text(), re.S | re.M)


def _shell_lines(block: str) -> list[str]:
    """The command lines of a bash block: continuations joined, comments and blanks dropped."""
    joined = re.sub(r"\\\n\s*", " ", block)
    return [line.strip() for line in joined.splitlines() if line.strip() and not line.strip().startswith("#")]


def _argv(line: str) -> list[str]:
    """A command line as the shell splits it, its trailing comment dropped."""
    return shlex.split(line, comments=True)


def _is_setup_line(line: str) -> bool:
    return line.startswith("python3 -m venv .venv && . .venv/bin/activate && pip install ")


def _doc_pages() -> list[Path]:
    return sorted(p for p in DOCS.glob("*.md") if p.name not in GENERATED_DOCS)


def _python_blocks_of_docs() -> list[tuple[str, int]]:
    return [(page.name, i) for page in _doc_pages() for i, _ in enumerate(_blocks(page, "python"))]


# ----------------------------------------------------------------------------- workspace

@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A scratch folder, the current folder while the examples run (restored after)."""
    if not (SAMPLE_DATA / "studies").is_dir():
        pytest.skip(f"sample trial absent: {SAMPLE_DATA} (python scripts/make_sample_data.py)")
    import pandas as pd

    root = tmp_path_factory.mktemp("readme")
    (root / "sample_data").symlink_to(SAMPLE_DATA, target_is_directory=True)
    truth = pd.read_csv(SAMPLE_DATA / "truth.csv", dtype={"patient_id": str, "series_uid": str, "study_uid": str})
    stand_in = truth[["patient_id", "study_date", "study_uid", "series_uid", "percent_opacity",
                      "percent_consolidation"]].assign(error="")
    (root / "out" / "demo").mkdir(parents=True)
    stand_in.to_csv(root / "out" / "demo" / "scores.csv", index=False)
    here = Path.cwd()
    os.chdir(root)
    try:
        yield root
    finally:
        os.chdir(here)


def _run(code: str, name: str, namespace: dict | None = None) -> dict:
    namespace = {"__name__": "__main__"} if namespace is None else namespace
    exec(compile(code, name, "exec"), namespace)
    return namespace


# ----------------------------------------------------------------------------- README

def test_readme_is_short() -> None:
    lines = len(README.read_text().splitlines())
    assert lines <= MAX_README_LINES, f"README.md has {lines} lines (at most {MAX_README_LINES})"


def test_readme_setup_commands_are_the_two_and_the_test_one_is_what_ci_runs() -> None:
    setup = [line for block in _blocks(README, "bash") for line in _shell_lines(block) if _is_setup_line(line)]
    ci = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines() if _is_setup_line(line.strip())]
    assert len(ci) == 1 and len(setup) == 2, (ci, setup)
    assert setup[1] == ci[0], "the README's test command must be exactly what .ci/run runs"
    assert setup[0] == ci[0].replace(" -e '.[test]' && python -m pytest -q", " -e . && chestct demo")


def test_readme_python_blocks_run(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocks = _blocks(README, "python")
    assert blocks, "README.md has no python example"
    for i, code in enumerate(blocks):
        namespace = _run(code, f"README.md python block {i + 1}")
    out = capsys.readouterr().out
    assert "chosen" in out and "thick_slices" in out  # the printed series table and the score
    assert namespace["score"].percent_opacity > 20  # P05 day 0: truth 43 %, read 31 %
    assert (workspace / "out" / "report" / "report.html").is_file()
    assert sorted(p.name for p in (workspace / "out" / "masks").iterdir()) == sorted(
        f"{SAMPLE_SERIES[2]}_{m}.nii.gz" for m in ("lungs", "opacity", "zones"))


@pytest.fixture(scope="module")
def readme_commands(workspace: Path) -> list[tuple[str, int, str]]:
    """Run every ``chestct`` line of the README's bash blocks in order: (line, exit code, output)."""
    from imaging.cli.main import main

    ran = []
    for block in _blocks(README, "bash"):
        for line in _shell_lines(block):
            if _is_setup_line(line):
                continue  # installs; CI's own run (.ci/run) is the test one
            argv = _argv(line)
            assert argv[0] == "chestct", f"README bash line that the test cannot run: {line}"
            buffer = io.StringIO()
            with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
                try:
                    code = main(argv[1:])
                except SystemExit as exc:  # --help
                    code = int(exc.code or 0)
            ran.append((line, code, buffer.getvalue()))
    return ran


def test_readme_chestct_commands_run_and_write_under_out(workspace: Path,
                                                       readme_commands: list[tuple[str, int, str]]) -> None:
    commands = [_argv(line)[1] for line, _, _ in readme_commands]
    assert {"inspect", "score", "compare"} <= set(commands), commands
    for line, code, printed in readme_commands:
        assert code == 0, f"{line}\n{printed}"
        argv = _argv(line)
        for flag in ("-o", "--out", "--outdir"):
            if flag in argv:
                assert argv[argv.index(flag) + 1].startswith("out/"), line
    scored = [line for line in readme_commands if _argv(line[0])[1] == "score"]
    out = workspace / _argv(scored[0][0])[_argv(scored[0][0]).index("-o") + 1]
    import pandas as pd

    scores = pd.read_csv(out / "scores.csv")
    assert len(scores) == 3 and scores["error"].isna().all()  # one patient's three visits
    assert (workspace / "out" / "report" / "report.html").is_file()


def test_every_scores_column_is_in_the_column_reference(workspace: Path,
                                                         readme_commands: list[tuple[str, int, str]]) -> None:
    import pandas as pd

    documented = set(re.findall(r"`([a-z0-9_]+)`", (DOCS / "outputs.md").read_text()))
    for scores in sorted(workspace.glob("out/*/scores.csv")):
        if scores.parent.name == "demo":
            continue  # the stand-in table
        missing = [c for c in pd.read_csv(scores, nrows=0).columns if c not in documented]
        assert not missing, f"columns of {scores.name} not in docs/outputs.md: {missing}"


# ----------------------------------------------------------------------------- docs/

@pytest.fixture(scope="module")
def small_nifti(workspace: Path) -> Path:
    """Eight slices of a sample series as NIfTI: the model example stays a few seconds."""
    from imaging import load_scan, write_nifti
    from imaging.common.volume import CTVolume

    vol = load_scan(SAMPLE_DATA.joinpath("studies", *SAMPLE_SERIES))
    path = workspace / "small_ct.nii.gz"
    write_nifti(CTVolume(vol.hu[20:28].copy(), vol.spacing_mm), path)
    return path


def _placeholders(page: str, small_nifti: Path) -> dict[str, Path | str]:
    """Placeholder (as quoted in the page) -> the real file it stands for."""
    series = SAMPLE_DATA.joinpath("studies", *SAMPLE_SERIES)
    if page == "reading.md":  # the real exports, with the cases the example guards against
        return {'"exports/study1"': shared_path("lidc_idri_0001"),
                '"exports/"': shared_path("dicom_variants").parent,
                '"ct.nii.gz"': shared_path("cip_ct64", "ct-64.nrrd")}
    if page == "batch.md":  # the archive the README's `chestct score` line scored: resumed, not rescored
        return {'"exports/"': "sample_data/studies/P05", '"out/scores"': "out/P05"}
    if page == "model.md":
        return {'"path/to/series"': small_nifti}
    return {'"path/to/series"': series}


@pytest.mark.parametrize(("page", "index"), _python_blocks_of_docs())
def test_docs_python_blocks_run(page: str, index: int, workspace: Path, small_nifti: Path,
                                readme_commands: list[tuple[str, int, str]],
                                capsys: pytest.CaptureFixture[str]) -> None:
    code = _blocks(DOCS / page, "python")[index]
    for placeholder, path in _placeholders(page, small_nifti).items():
        if placeholder in code:
            code = code.replace(placeholder, repr(str(path)))
    namespace = _run(code, f"docs/{page} python block {index + 1}")
    assert not re.search(r'"(exports/|path/to/)', code), "a placeholder left unreplaced"
    if page == "reading.md":
        from imaging import CTVolume

        assert namespace["study"].chosen is not None and isinstance(namespace["vol"], CTVolume)
        assert any(st.chosen is None for st in namespace["catalog"].studies)  # the case the example guards against
        assert "passed over" in capsys.readouterr().out
    if page == "batch.md":
        table = namespace["table"]
        assert len(table) == 3 and table["error"].isna().all() and table.attrs["summary"]["n_resumed"] == 3


def test_docs_examples_write_under_out() -> None:
    """No example writes results/, masks/ or qc/ inside a checkout: outputs go to out/ (git-ignored)."""
    targets = []
    for page in [README, *_doc_pages()]:
        for block in _blocks(page, "python") + _blocks(page, "bash"):
            targets += [(page.name, t) for t in re.findall(r"(?:^|\s)(?:-o|--out|--outdir)\s+(\S+)", block)]
            targets += [(page.name, t) for t in re.findall(r"\b(?:out|mask_dir)=\"([^\"]+)\"", block)]
            targets += [(page.name, t) for t in re.findall(r"write_\w+\([^)]*?\"([^\"]+)\"", block)]
    assert targets and all(t.startswith("out/") for _, t in targets), [t for t in targets if not t[1].startswith("out/")]


# ----------------------------------------------------------------------------- links

def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


@pytest.mark.parametrize("page", [README, *sorted(DOCS.glob("*.md")), REPO / "CHANGELOG.md"],
                         ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_point_to_existing_files_and_headings(page: Path) -> None:
    text = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.S | re.M)
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue  # http(s), mailto
        file, _, anchor = target.partition("#")
        path = (page.parent / file).resolve() if file else page
        if not path.exists():
            broken.append(target)
        elif anchor and path.suffix == ".md":
            headings = re.findall(r"^#+ (.*)$", path.read_text(), re.M)
            if anchor not in {_slug(h) for h in headings}:
                broken.append(target)
    assert not broken, f"{page.name}: links to nothing: {broken}"


# ----------------------------------------------------------------------------- names

def _resolves(dotted: str) -> bool:
    """A dotted name is a module, or an attribute of the longest module prefix."""
    import importlib

    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attr in parts[cut:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False


def test_files_and_modules_the_pages_name_exist() -> None:
    """`imaging/...py` paths and `imaging.x.y` names in the README and docs/ are real.

    In CHANGELOG.md only the new side of the module table is checked (the old modules are
    gone by design).
    """
    texts = {page.name: page.read_text() for page in [README, *_doc_pages()]}
    changelog = (REPO / "CHANGELOG.md").read_text()
    texts["CHANGELOG.md (new modules)"] = "\n".join(
        row.split("|")[2] for row in changelog.splitlines() if row.startswith("| `imaging.") and row.count("|") >= 3)
    bad = []
    for name, text in texts.items():
        for path in re.findall(r"`((?:imaging|models|scripts|tests)/[\w/]+\.py)`", text):
            if not (REPO / path).is_file():
                bad.append((name, path))
        for dotted in re.findall(r"`((?:imaging|models)(?:\.\w+)+)`", text):
            if not _resolves(dotted):
                bad.append((name, dotted))
    assert not bad, f"named but not found: {bad}"
