"""docs/python-api.md runs as written: its code blocks become a notebook, executed cell by cell in a real Jupyter
kernel (nbclient), and each result shows itself as a picture, a table or a chart, never as a tensor dump."""

import ast
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "python-api.md"
LONGEST_TEXT = 2000  # characters of plain text a cell may print: a tensor dump is tens of thousands

pytestmark = [pytest.mark.mnist, pytest.mark.slow]


def code_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code) for code in code_blocks()])
    folder = tmp_path_factory.mktemp("notebook")
    client = NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(folder)}})
    client.execute()
    return notebook, folder


def outputs(cell) -> dict:
    """The cell's rich output: {mime type: data} of its result, figures included."""
    found = {}
    for output in cell.outputs:
        found.update(output.get("data", {}))
    return found


def test_every_example_runs_and_shows_itself(executed):
    notebook, folder = executed
    cells = {cell.source.rstrip().splitlines()[-1].split("#")[0].strip(): cell for cell in notebook.cells}
    for cell in notebook.cells:
        text = "".join(o.get("text", "") for o in cell.outputs) + outputs(cell).get("text/plain", "")
        assert len(text) < LONGEST_TEXT and "tensor([" not in text, cell.source
        assert not any(o.output_type == "error" for o in cell.outputs), cell.source
    # The results a notebook user looks at render as pictures, tables and charts.
    assert "image/png" in outputs(cells["sample"]) and "<img" in outputs(cells["sample"])["text/html"]
    assert "<img" in outputs(cells["result"])["text/html"] and "predicted 7" in outputs(cells["result"])["text/html"]
    assert "<table" in outputs(cells["model"])["text/html"] and "conv1" in outputs(cells["model"])["text/html"]
    assert outputs(cells["run"])["text/html"].count("<svg") == 2
    assert "confusion matrix" in outputs(cells["report"])["text/html"]
    assert "<table" in outputs(cells["mine"])["text/html"]
    for figure in ("plot.show(result)", "plot.history(run)", "plot.confusion_matrix(report)",
                   'plot.feature_maps(photo, "_conv_head", n=16, order="top")'):
        assert "image/png" in outputs(cells[figure]), figure
    # The answers are the ones the API gives.
    assert outputs(cells["result.predicted, round(result.confidence, 3), result.top(3)[0][0]"])["text/plain"] \
        .startswith("(7, ")
    assert outputs(cells["[convscope.explain(\"mnist_cnn\", form).predicted for form in forms]"])["text/plain"] == \
        "[7, 7, 7, 7]"
    assert "divide it by 255 or pass it as uint8" in outputs(cells["str(caught[0].message)"])["text/plain"]
    assert ast.literal_eval(outputs(cells["convscope.METHODS"])["text/plain"]) == \
        ("gradcam", "gradcam++", "hirescam", "saliency")
    assert (folder / "cam.png").stat().st_size > 0 and (folder / "digit.png").exists()
