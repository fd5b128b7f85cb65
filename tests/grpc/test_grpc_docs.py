"""The gRPC pages say what the code does: docs/grpc.md's TOML loads (Python 3.11's tomllib, no TOML 1.1 inline
tables over several lines) into a valid scenario, and data/README.md documents every field of a gRPC spec."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from integration_kit.playbook.kinds.grpc import spec
from integration_kit.sim.scenarios import Scenario

ROOT = Path(__file__).resolve().parents[2]
GRPC_DOC = (ROOT / "docs" / "grpc.md").read_text(encoding="utf-8")
DATA_README = (ROOT / "data" / "README.md").read_text(encoding="utf-8")


def test_every_toml_block_of_the_grpc_page_loads_as_a_scenario() -> None:
    blocks = re.findall(r"```toml\n(.*?)```", GRPC_DOC, re.S)
    assert blocks
    for block in blocks:
        data = tomllib.loads(block)
        played = Scenario.from_mapping({"name": "docs", **data})
        assert played.phases


def test_the_first_snippet_is_followed_by_the_tls_false_rule_for_a_local_plaintext_server() -> None:
    first_section = GRPC_DOC.split("\n## ", 1)[0]
    assert "tls=False" in first_section
    assert "GrpcTlsError" in first_section


def test_data_readme_documents_every_field_of_a_grpc_spec() -> None:
    section = DATA_README.split('## gRPC integration fields (`kind = "grpc"`)', 1)[1].split("\n## ", 1)[0]
    for key in sorted(spec._TOP | spec._METHOD):
        assert re.search(rf"`\[{{0,2}}{key}\b", section), key  # `key`, `[key]` or `[[key]]`
    for key in ("methodConfig", "retryThrottling", "retryPolicy", "hedgingPolicy", "timeout"):
        assert key in section, key
