"""--engine ray --address on a two-node local cluster (ray.cluster_utils.Cluster): the job reaches it by address
and finishes, one row per input."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import cv2
import pytest
from typer.testing import CliRunner

from fcnedge.cli import app
from fcnedge.data.synthetic import synthetic_images

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    from ray.cluster_utils import Cluster

    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    c.add_node(num_cpus=2)
    c.wait_for_nodes()
    yield c.address
    ray.shutdown()
    c.shutdown()


def test_two_node_cluster_by_address(cluster: str, identity_onnx: Path, tmp_path: Path) -> None:
    d = tmp_path / "in"
    d.mkdir()
    for i, img in enumerate(synthetic_images([(64, 96), (130, 200)] * 4, seed=14)):
        cv2.imwrite(str(d / f"c{i}.png"), img[:, :, ::-1])
    out = tmp_path / "out"
    args = ["predict", str(identity_onnx), str(d), "-o", str(out), "--engine", "ray", "--address", cluster]
    res = CliRunner().invoke(app, [*args, "--actors", "2", "--batch-size", "1"])
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert len(rows) == 8 and all(r["status"] == "ok" and r["node"] for r in rows)
    assert not ray.is_initialized()  # the driver connected for the job and let go
