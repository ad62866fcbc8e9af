"""vLLM server mode without a GPU: the GPU split, the ``trl vllm-serve`` command line (parsed by
TRL's own parser), the health check against a local HTTP server, and the server's stop on error."""

from __future__ import annotations

import dataclasses
import http.server
import socket
import sys
import textwrap
import threading
from pathlib import Path

import pytest

import rbio.training.vllm_server as vllm_server
from rbio.config import ConfigError, GrpoConfig
from rbio.config_file import read_config
from rbio.training.vllm_server import (
    VllmServerError,
    check_training_gpus,
    layout_problems,
    running_server,
    server_command,
    split_devices,
    visible_devices,
    vllm_server_for,
    wait_until_healthy,
)
from tests.helpers import REPO

# A stand-in for `trl vllm-serve`: records the GPUs it was given, answers /health after a delay.
FAKE_SERVER = textwrap.dedent(
    """
    import http.server, os, sys, time
    port, delay, seen = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
    open(seen, "w").write(os.environ.get("CUDA_VISIBLE_DEVICES", ""))
    print("fake server loading", flush=True)
    time.sleep(delay)

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/health" else 404)
            self.end_headers()

        def log_message(self, *args):
            pass

    http.server.HTTPServer(("127.0.0.1", port), Health).serve_forever()
    """
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def paper_grpo(**changes) -> GrpoConfig:
    values = dict(read_config(REPO / "config.yaml").grpo)
    return GrpoConfig({**values, **changes})


@dataclasses.dataclass(frozen=True)
class Job:
    grpo: GrpoConfig
    base_model: str
    checkpoint_dir: str
    processes: int


def test_the_server_takes_the_last_gpus_and_the_others_train():
    eight = [str(i) for i in range(8)]
    server = paper_grpo(vllm_mode="server")
    assert split_devices(eight, server) == (eight[:7], ["7"])
    two = paper_grpo(vllm_mode="server", vllm_tensor_parallel_size=2)
    assert split_devices(eight, two) == (eight[:6], ["6", "7"])
    assert split_devices(eight, paper_grpo()) == (eight, [])
    with pytest.raises(VllmServerError, match="needs at least 2 GPUs .* has 1"):
        split_devices(["0"], server)


def test_the_profiles_gpus_are_checked_while_the_workflow_parses():
    server = paper_grpo(vllm_mode="server")
    with pytest.raises(ConfigError, match="config key 'grpo': grpo.vllm_mode is 'server'"):
        check_training_gpus(server, {"gpu": 1})
    check_training_gpus(server, {"gpu": 8, "nodes": 1})
    check_training_gpus(server, {"gpu": "2 * attempt"})  # an expression: judged at job start
    check_training_gpus(paper_grpo(), {})  # the rule's own gpu=1: colocate runs there


def test_gpu_layouts_vllm_cannot_run():
    assert layout_problems(paper_grpo(vllm_mode="server"), 1)[0].startswith(
        "grpo.vllm_mode is 'server'"
    )
    assert layout_problems(paper_grpo(vllm_mode="server"), 8) == []
    assert "does not divide" in layout_problems(paper_grpo(vllm_tensor_parallel_size=2), 3)[0]
    assert layout_problems(paper_grpo(use_vllm=False, vllm_mode="server"), 1) == []


def test_the_jobs_gpus_are_slurms_or_the_first_ones():
    assert visible_devices({"CUDA_VISIBLE_DEVICES": "4,5, 6"}, 2) == ["4", "5", "6"]
    assert visible_devices({}, 3) == ["0", "1", "2"]


def test_server_gpus_only_in_server_mode():
    assert paper_grpo().vllm_server_gpus == 0  # colocate
    assert paper_grpo(vllm_mode="server", vllm_tensor_parallel_size=2).vllm_server_gpus == 2
    assert paper_grpo(vllm_mode="server", use_vllm=False).vllm_server_gpus == 0


def test_trl_parses_the_server_command_line_with_the_configs_values():
    from trl.scripts.vllm_serve import make_parser

    grpo = paper_grpo(
        vllm_mode="server", vllm_server_port=8123, vllm_tensor_parallel_size=2, bf16=True
    )
    command = server_command("results/models/base", grpo, python="python")
    assert command[:4] == ["python", "-m", "trl.cli.main", "vllm-serve"]
    # TRL's own parser: a flag name it does not know fails here.
    (args,) = make_parser().parse_args_and_config(command[4:])
    assert (args.model, args.host, args.port) == ("results/models/base", "127.0.0.1", 8123)
    assert (args.tensor_parallel_size, args.max_model_len, args.dtype) == (2, 768, "bfloat16")


class _SlowHealth(http.server.BaseHTTPRequestHandler):
    """503 for the first two health checks (a server still loading), then 200."""

    calls = 0

    def do_GET(self):
        type(self).calls += 1
        self.send_response(200 if type(self).calls > 2 and self.path == "/health" else 503)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_the_health_check_waits_until_the_server_answers():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _SlowHealth)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        wait_until_healthy(url, timeout=30, interval=0.05)
        assert _SlowHealth.calls == 3
    finally:
        server.shutdown()


def test_a_server_that_never_answers_fails_with_its_log(tmp_path):
    log_path = tmp_path / "vllm_server.log"
    log_path.write_text("loading weights\nCUDA out of memory\n")
    with pytest.raises(VllmServerError, match="within 0 s") as error:
        wait_until_healthy(
            f"http://127.0.0.1:{free_port()}", timeout=0.2, log_path=log_path, interval=0.05
        )
    assert "CUDA out of memory" in str(error.value)


def _fake_server(tmp_path: Path, port: int, delay: float = 0.0) -> list[str]:
    script = tmp_path / "fake_server.py"
    script.write_text(FAKE_SERVER)
    return [sys.executable, str(script), str(port), str(delay), str(tmp_path / "seen_gpus")]


def test_a_server_that_dies_fails_at_once_with_its_exit_code_and_log(tmp_path):
    command = [sys.executable, "-c", "print('no such model'); raise SystemExit(3)"]
    with (
        pytest.raises(VllmServerError, match="exited with code 3") as error,
        running_server(command, ["1"], f"http://127.0.0.1:{free_port()}", 60, tmp_path / "s.log"),
    ):
        pass
    assert "no such model" in str(error.value)


def test_the_server_runs_on_its_gpus_and_is_stopped_when_training_fails(tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with (
        pytest.raises(RuntimeError, match="training failed"),
        running_server(_fake_server(tmp_path, port, 0.3), ["7"], url, 30, tmp_path / "s.log") as p,
    ):
        assert (tmp_path / "seen_gpus").read_text() == "7"
        raise RuntimeError("training failed")
    assert p.poll() is not None  # stopped, not left holding the GPU
    with pytest.raises(VllmServerError):
        wait_until_healthy(url, timeout=0.1, interval=0.05)


def test_server_mode_trains_on_the_other_gpus_and_restores_the_environment(tmp_path, monkeypatch):
    port = free_port()
    monkeypatch.setattr(
        vllm_server, "server_command", lambda model, grpo: _fake_server(tmp_path, port)
    )
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3,4")
    grpo = paper_grpo(vllm_mode="server", vllm_server_port=port, vllm_server_timeout=30)
    job = Job(grpo, "base", str(tmp_path / "checkpoints"), processes=3)
    with vllm_server_for(job) as training:
        assert training.processes == 2
        assert vllm_server.os.environ["CUDA_VISIBLE_DEVICES"] == "2,3"
        assert (tmp_path / "seen_gpus").read_text() == "4"
    assert vllm_server.os.environ["CUDA_VISIBLE_DEVICES"] == "2,3,4"
    assert (tmp_path / "checkpoints" / vllm_server.SERVER_LOG).is_file()


def test_colocate_mode_starts_nothing(tmp_path):
    job = Job(paper_grpo(), "base", str(tmp_path), processes=8)
    with vllm_server_for(job) as training:
        assert training is job
    assert not (tmp_path / vllm_server.SERVER_LOG).exists()


def test_launch_in_server_mode_trains_one_process_fewer_beside_the_server(tmp_path, monkeypatch):
    import rbio.training.grpo as grpo_module
    from tests.training.conftest import grpo_job, tiny_config

    port = free_port()
    monkeypatch.setattr(
        vllm_server, "server_command", lambda model, grpo: _fake_server(tmp_path, port)
    )
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    trained = []
    monkeypatch.setattr(
        grpo_module,
        "train_grpo",
        lambda job: trained.append((job.processes, vllm_server.os.environ["CUDA_VISIBLE_DEVICES"])),
    )
    cfg = tiny_config(use_vllm=True, vllm_mode="server", vllm_server_port=port)
    job = grpo_job(cfg, tmp_path / "base", tmp_path / "prompts", tmp_path, processes=2)
    grpo_module.launch(job)
    # One training process (in this process, on GPU 0); the server had GPU 1.
    assert trained == [(1, "0")]
    assert (tmp_path / "seen_gpus").read_text() == "1"
