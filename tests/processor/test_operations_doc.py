"""docs/operations.md is generated from the registry and must match it."""

from processor.operations import all_operations
from tools.operations_doc import TARGET, main, render


def test_the_committed_page_is_what_the_registry_generates() -> None:
    assert TARGET.read_text(encoding="utf-8") == render(), (
        "docs/operations.md is stale: run .venv/bin/python tools/operations_doc.py"
    )
    assert main(["--check"]) == 0


def test_every_operation_and_parameter_is_documented() -> None:
    page = render()
    for operation in all_operations():
        assert f"## `{operation.name}`" in page
        assert operation.summary in page
        for name in operation.params.model_json_schema().get("properties", {}):
            assert f"| `{name}` |" in page
