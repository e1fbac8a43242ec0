"""Numbers in a notebook's prose are computed by the run, or are references and quoted figures.

Every number in a markdown cell must be one of:

* a reference: a section, equation, figure, table, algorithm, notebook or premise number
  (``Sec. IV-B``, ``eq. 9-10``, ``Fig. 5(a)``, ``section 9``, ``notebook 03``, ``P2``), a heading's
  or a list's own numbering, or part of a name (``SD1.5``, ``ViT-L/14``, ``RTX 3080 Ti``);
* code the reader types, in backticks (``Readings(rho=0.5)``): not a claim about a result;
* in a reviewed phrase of :data:`ALLOWED` (the paper's own numbers, quoted, and a few fixed facts),
  each with its reason;
* printed by a cell of the executed run (its outputs, small parameters), if it has three digits
  or more (``29.5``, ``1632``, ``-0.98``). A shorter number (``25``, ``0.2``) is too likely to be
  printed by chance, so it needs a reference, code or the reviewed list.

A number that comes from the run is formatted from variables (printed, or shown with
``IPython.display.Markdown``), never typed: then a papermill run with other parameters cannot leave
stale prose, and this test fails on one that does. To add a notebook, add it to :data:`NOTEBOOKS`
(and its reviewed phrases to :data:`ALLOWED`).
"""

from __future__ import annotations

import json
import re

import pytest

NOTEBOOKS = ["01", "02", "03", "04", "05", "06", "07", "08"]
"""Notebooks checked (a new notebook: add its prefix here)."""

ALLOWED: dict[str, dict[str, str]] = {
    "all": {
        "95%": "the interval level every figure and table uses (a choice, not a result)",
        "1-step": "SDXL-Turbo's fixed step count (the paper, Sec. IV-A)",
        "1 step": "SDXL-Turbo's fixed step count (the paper, Sec. IV-A)",
        "up to 2.5%": "the paper's words (Sec. IV-B)",
        "up to a 2.5% increase": "the paper's words (Sec. IV-B)",
        "Up to 2.5%": "the paper's words (Sec. IV-B)",
        "up to 4.7%": "the paper's words (abstract)",
        "from 0.2 to 2.4": "the paper's words (Sec. IV-B)",
        "rho = 1": "the oracle's definition (a predictor that equals the score)",
        "rho = 0": "category information, by definition",
        "(N_m + 1)": "eq. 11's queue term (a task waits for those before it)",
        "= 100 (": "a percentage, by definition",
        "1.96 standard errors": "the normal quantile of a 95% interval",
        "**Exercise 1.**": "an exercise's own numbering (tests/test_teaching.py)",
        "**Exercise 2.**": "an exercise's own numbering (tests/test_teaching.py)",
        "**Exercise 3.**": "an exercise's own numbering (tests/test_teaching.py)",
    },
    "01": {
        "11 challenges": "PartiPrompts' challenge labels (checked by the loader, printed in section 1)",
        "12 categories": "PartiPrompts' categories (checked by the loader)",
        "4 groups": "the paper's four groups (Sec. II-A)",
        "to 4": "the paper's four groups (heading of section 2)",
        "77 tokens": "CLIP's text encoder context length (a property of the model)",
        "1.5 IQR": "the boxplot's whisker convention",
        "Group 0": "the name of the lowest data group",
        "group 0": "the name of the lowest data group",
        "(0 = lowest": "the name of the lowest data group",
        "(50 steps": "the medium model's reference steps, diffusers' default (data/scenarios)",
        "rows sum to 1": "probabilities, by definition",
        "every row sums to 1": "probabilities, by definition",
        "= 1 − Φ": "the complement in eq. 10's formula",
        "(35 prompts)": "challenge sizes of PartiPrompts (SPEC section 4; printed in section 1)",
        "(312)": "challenge sizes of PartiPrompts (SPEC section 4; printed in section 1)",
    },
    "02": {
        '"338 TFLOPs"': "the paper's words (Sec. II-B)",
        "25 SDXL": "the paper's setting for its 338 TFLOPs (Sec. II-B)",
        "at 25 steps": "the paper's setting for its 338 TFLOPs (Sec. II-B)",
        "That is 25 UNet": "the paper's setting for its 338 TFLOPs (Sec. II-B)",
        "W(25) = 25 F": "the paper's setting for its 338 TFLOPs (Sec. II-B)",
        "1024 x 1024": "SDXL's resolution (the paper, Sec. II-B)",
        "3.5 B": "the paper's parameter count (Sec. II-B)",
        "1.06 B": "the paper's parameter count (Sec. II-B)",
        "2 FLOP per multiply-add": "the counting convention",
        "batch of 2": "classifier-free guidance runs the UNet on two latents",
        "2 for SD1.5 and SDXL, 1 for": "classifier-free guidance batch sizes",
        "100 x cosines": "CLIPScore's definition (torchmetrics)",
        "clamped at 0": "CLIPScore's definition (torchmetrics)",
        "32-pixel": "the tiny pipeline's resolution (aigc_lib.models)",
        "1024-pixel": "SDXL's resolution (the paper, Sec. II-B)",
        "1024 pixels": "SDXL's resolution (the paper, Sec. II-B)",
        "SD1.5's at 512": "SD1.5's resolution (the paper, Sec. II-B)",
        "10 GB": "the size of the real weights, order of magnitude (the hub's files)",
        "batch 1": "the measurement setting",
        "at batch 1": "the measurement setting",
        "ln((z + 4) / z)": "the formula of the printed gain (step set spacing of 4, the paper's Z)",
    },
    "03": {},
    "04": {
        "saves 39.1%": "the paper's words (Sec. IV-C)",
        "lowest 2% of utilities": "where the trace figure cuts its y axis (a plotting choice)",
    },
    "05": {},
    "06": {
        "-30.2% and -39.1% time": "the paper's words (Sec. IV-C)",
        "+17.8% and": "the paper's words (Sec. IV-C)",
        "+12.7% utility": "the paper's words (Sec. IV-C)",
        "(1: agrees, 0: does not": "the heatmap's legend: a verdict is true or false",
    },
    "07": {
        "MLSys 2025 (arXiv 2411.15381)": "DiffServe's citation: venue, year and arXiv id",
        "(arXiv 2509.00642)": "HADIS's citation: its arXiv id",
        "inference traces of 2023": "the traces' published name (Azure LLM inference traces 2023)",
        "CC-BY 4.0": "the traces' licence",
        "ISCA 2024": "the traces' citation: venue and year of Splitwise",
        "so 1 means the GPU is busy": "offered load's definition: utilisation 1 is a GPU never idle",
        "below utilisation 1": "offered load's definition: utilisation 1 is a GPU never idle",
        "(loads above 1)": "overload's definition: offered utilisation above a GPU never idle",
        "95th-percentile": "the definition of the p95 latency",
    },
    "08": {
        "MLSys 2025": "DiffServe's citation: venue and year",
    },
}
"""Reviewed phrases, per notebook prefix (``all`` applies everywhere): phrase -> reason."""

NAMES = (
    "SD1.5",
    "ViT-L/14",
    "ViT-H-14",
    "ViT-g/14",
    "ViT-B/32",
    "RTX 3080 Ti",
    "RTX 3090",
    "RTX 4090",
    "A100",
    "H100",
    "arXiv 2409.09072",
    "fp16",
    "x100",
    "R^2",
)
"""Names that hold digits."""

REFERENCE = re.compile(
    r"\b(?:Secs?\.|[Ss]ections?|SPEC eq\.|[Ee]qs?\.|[Ee]quations?|Figs?\.|[Ff]igures?|Tables?|"
    r"Alg(?:orithm)?\.?|[Nn]otebooks?|[Ss]tep)\s*"
    r"[\dIVX]+(?:[.-][\dA-Za-z]+)*(?:\([a-z]\))?[a-z]?"
    r"(?:\s*(?:-|–|to|and|or|,)\s*[\dIVX]+(?:[.-][\dA-Za-z]+)*(?:\([a-z]\))?[a-z]?)*"
)
"""A reference: Sec. IV-B, section 9, eq. 9-10, Fig. 5(a), notebooks 03 to 05, Algorithm 1."""

NUMBER = re.compile(r"(?<![\w.\-/^])[-+−]?\d+(?:[.,]\d+)*%?")
"""A number not glued to a name (theta_1, P2, SD1.5, fp16, R^2 are names)."""

NUMBERING = re.compile(r"^(?:#+\s*\d+(?:\.\d+)*\.?|\s*\d+[.)]\s)", re.MULTILINE)
"""A heading's or a list's own numbering."""


def _blank(text: str, pattern: re.Pattern | str) -> str:
    if isinstance(pattern, str):
        pattern = re.compile(re.escape(pattern))
    return pattern.sub(lambda m: " " * len(m.group()), text)


def printed_numbers(cells: list[dict]) -> set[str]:
    """The numbers in the outputs of executed code cells (streams, text, Markdown displays)."""
    found: set[str] = set()
    for cell in cells:
        for out in cell.get("outputs", []):
            texts = [out.get("text", "")]
            data = out.get("data", {})
            texts += [data.get(kind, "") for kind in ("text/plain", "text/markdown")]
            for text in texts:
                text = "".join(text) if isinstance(text, list) else text
                found |= {_plain(n) for n in NUMBER.findall(text)}
    return found


def _plain(number: str) -> str:
    return number.lstrip("+-−").rstrip("%").replace(",", "")


def stray_numbers(
    cells: list[dict], printed: set[str], allowed: dict[str, str]
) -> list[tuple[int, str, str]]:
    """``(cell index, number, context)`` for every number of a markdown cell that is neither a
    reference, code, an ``allowed`` phrase nor printed (see the module's docstring)."""
    strays = []
    for index, cell in enumerate(cells):
        if cell["cell_type"] != "markdown":
            continue
        text = "".join(cell["source"])
        text = _blank(text, re.compile(r"```.*?```", re.DOTALL))
        text = _blank(text, re.compile(r"`[^`]*`"))
        for phrase in sorted(allowed, key=len, reverse=True):
            text = _blank(text, phrase)
        for name in NAMES:
            text = _blank(text, name)
        text = _blank(text, REFERENCE)
        text = _blank(text, NUMBERING)
        for match in NUMBER.finditer(text):
            token = _plain(match.group())
            if token in printed and sum(ch.isdigit() for ch in token) >= 3:
                continue
            context = text[max(0, match.start() - 40) : match.end() + 30].replace("\n", " ")
            strays.append((index, match.group(), " ".join(context.split())))
    return strays


@pytest.mark.parametrize("prefix", NOTEBOOKS)
def test_every_number_in_the_prose_is_computed_quoted_or_a_reference(prefix, notebook_results):
    _, folder = notebook_results(prefix)
    executed = json.loads((folder / f"{folder.name}.ipynb").read_text(encoding="utf-8"))
    cells = executed["cells"]
    allowed = {**ALLOWED["all"], **ALLOWED.get(prefix, {})}
    strays = stray_numbers(cells, printed_numbers(cells), allowed)
    assert not strays, "numbers typed in prose (print them from variables, or review them):\n" + (
        "\n".join(f"  cell {i}: {n!r} in ...{c}..." for i, n, c in strays)
    )


def test_the_check_catches_typed_numbers_and_lets_references_through():
    cells = [
        {"cell_type": "markdown", "source": ["## 3. Results\n", "A 25-line loop gains 2.37% "]},
        {"cell_type": "markdown", "source": ["over 81 step pairs and 1234 slots (Sec. IV-B)."]},
        {"cell_type": "markdown", "source": ["See eq. 9-10, Fig. 5(a), notebook 03, section 9.2."]},
        {"cell_type": "markdown", "source": ["Use `Readings(rho=0.5)`; SD1.5 and theta_1; P2."]},
        {"cell_type": "code", "source": [], "outputs": [{"text": "gain +2.37%, 25 lines"}]},
    ]
    strays = stray_numbers(cells, printed_numbers(cells), {})
    assert [(i, n) for i, n, _ in strays] == [(0, "25"), (1, "81"), (1, "1234")]
    # the printed path: 2.37 passed above; once printed, 1234 passes too, but 25 never by chance
    cells[-1]["outputs"].append({"data": {"text/markdown": "1234 slots"}})
    assert [n for _, n, _ in stray_numbers(cells, printed_numbers(cells), {})] == ["25", "81"]
    assert stray_numbers(cells, printed_numbers(cells), {"25-line": "x", "81 step": "y"}) == []


def test_every_reviewed_phrase_holds_a_number_and_a_reason():
    for prefix, phrases in ALLOWED.items():
        assert prefix == "all" or prefix in NOTEBOOKS, prefix
        for phrase, reason in phrases.items():
            assert re.search(r"\d", phrase) and len(reason) > 10, (prefix, phrase)


SHORT_CELLS = ["01", "02", "03", "04", "05", "06", "07", "08"]
"""Notebooks whose code cells are at most 15 lines unless the markdown cell above says
"Bookkeeping", or the cell is tagged ``record`` (the run's record: the found box filled in and
``metrics.json``, which gather the whole run by design; see tests/test_teaching.py)."""


@pytest.mark.parametrize("prefix", SHORT_CELLS)
def test_a_long_code_cell_is_bookkeeping_and_says_so(prefix):
    from pathlib import Path

    (path,) = (Path(__file__).resolve().parent.parent / "notebooks").glob(f"{prefix}_*.ipynb")
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    for i, cell in enumerate(cells):
        lines = "".join(cell["source"]).splitlines()
        record = "record" in cell.get("metadata", {}).get("tags", [])
        if cell["cell_type"] == "code" and len(lines) > 15 and not record:
            above = "".join(cells[i - 1]["source"]) if i else ""
            assert cells[i - 1]["cell_type"] == "markdown" and above.startswith("Bookkeeping"), (
                f"{path.name} cell {i}: {len(lines)} lines; split it or mark it as bookkeeping"
            )
