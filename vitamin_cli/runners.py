"""Where a sweep's jobs run: in this process, one after another (`InProcess`), or as Ray tasks on every GPU of a
machine or a cluster (`RayRunner`, docs/scale.md). Both run the same plain function on the same plain jobs and
yield each outcome as it finishes; bench and eval build their jobs and read the outcomes the same way on both.

Ray is the engine; this module only says what each task needs:
- a task on CUDA asks for one whole GPU (Ray sets CUDA_VISIBLE_DEVICES, so it runs on `cuda:0`) and a fresh
  worker process, which frees the GPU's memory between models;
- on the CPU a task asks for the CPUs it is given (a bench task all of a node's, so that no two measurements
  share one); a CPU worker is reused, since importing torch and open_clip again would cost more than most
  measurements;
- a worker that dies (killed, out of memory, its node lost) is retried once on a new worker, then recorded as
  that task's error, and the sweep goes on; Ctrl-C cancels what is queued and keeps what finished.

Ray is left as it was found: `disconnect()` (at the end of `scope()`, or at exit) shuts down the local Ray that
`connect()` started, with its processes and its temp folder, and only disconnects from a cluster it joined.
While Ray is connected, SIGTERM and SIGHUP stop a sweep as Ctrl-C does (`interrupts.unwinding()`).

Nothing imports Ray until a `RayRunner` is made.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from vitamin_cli import interrupts, report
from vitamin_cli.errors import UsageError, VitaminError

# Environment variables a worker needs as the driver has them: where the Hub is and how long to wait for it.
# Cache paths are not among them: a node uses its own cache unless --cache-dir names a shared one.
FORWARDED = (
    "HF_ENDPOINT",
    "HF_TOKEN",
    "HF_HUB_OFFLINE",
    "HF_HUB_DOWNLOAD_TIMEOUT",
    "HF_HUB_ETAG_TIMEOUT",
    "VITAMIN_RETRY_WAIT",
    "VITAMIN_PULL_DEADLINE",
    "VITAMIN_DEBUG",
)


@dataclass(frozen=True)
class Resources:
    """What one task asks of Ray."""

    num_gpus: float = 0.0
    num_cpus: float = 1.0
    fresh_worker: bool = False  # a new worker process for each task

    def decorator(self) -> dict[str, Any]:
        return {
            "num_gpus": self.num_gpus,
            "num_cpus": self.num_cpus,
            "max_retries": 1,  # a dead worker: once more, on a new one
            "retry_exceptions": False,  # an error of the task itself is its result, not a reason to retry
            "max_calls": 1 if self.fresh_worker else 0,  # Ray takes it when the function is made remote only
        }


@dataclass
class Finished:
    """One task's outcome, with where it ran."""

    index: int  # the job's position in the list given
    value: Any = None
    error: str | None = None  # set when the task could not run to its end (its worker died twice)
    node: str | None = None  # host name
    node_id: str | None = None  # Ray's node id
    gpu_ids: list[Any] = field(default_factory=list)
    started: float | None = None
    ended: float | None = None


class Runner(Protocol):
    """Runs `function(*job)` for each job and yields each outcome as it finishes."""

    in_process: bool  # whether jobs run here, where a callback can see their progress

    def gpus(self) -> float:
        """GPUs the jobs can use."""
        ...

    def cpus_per_node(self) -> float:
        """The CPUs of the smallest node: a task asking for that many has a node to itself."""
        ...

    def run(
        self, function: Callable[..., Any], jobs: Sequence[tuple[Any, ...]], resources: Resources
    ) -> Iterator[Finished]: ...


class InProcess:
    """Each job in this process, one after another, in the order given; an exception of a job is raised."""

    in_process = True

    def gpus(self) -> float:
        import torch

        return float(torch.cuda.device_count()) if torch.cuda.is_available() else 0.0

    def cpus_per_node(self) -> float:
        return float(os.cpu_count() or 1)

    def run(
        self, function: Callable[..., Any], jobs: Sequence[tuple[Any, ...]], resources: Resources
    ) -> Iterator[Finished]:
        for index, job in enumerate(jobs):
            interrupts.check()
            yield Finished(index, function(*job))


class RayRunner:
    """Each job a Ray task: on this machine's GPUs (`local`), the running cluster (`auto`) or a client
    connection (`ray://host:port`)."""

    in_process = False

    def __init__(self, address: str) -> None:
        connect(address)

    def gpus(self) -> float:
        import ray

        return float(ray.cluster_resources().get("GPU", 0))  # type: ignore[no-untyped-call]

    def cpus_per_node(self) -> float:
        import ray

        counts = [n["Resources"].get("CPU", 0) for n in ray.nodes() if n.get("Alive")]  # type: ignore[no-untyped-call]
        return float(min((c for c in counts if c), default=1))

    def run(
        self, function: Callable[..., Any], jobs: Sequence[tuple[Any, ...]], resources: Resources
    ) -> Iterator[Finished]:
        """Jobs in the order given as resources allow, outcomes in the order they finish; what is still
        queued or running when the caller stops (Ctrl-C, an error) is cancelled."""
        import ray

        remote = ray.remote(**resources.decorator())(_call)
        pending = {remote.remote(function, job): index for index, job in enumerate(jobs)}
        try:
            while pending:
                interrupts.check()
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=1)
                for ref in ready:
                    yield _outcome(ref, pending.pop(ref))
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)


_connection: ExitStack | None = None  # what connect() did to this process, for disconnect() to undo
_stdout_guard: Callable[[], AbstractContextManager[object]] | None = None  # scope()'s

# Where a local Ray finds its cluster's token, and the mode Ray sets while starting one: Ray 2.60 turns token
# authentication on for the local cluster it starts, and without a token writes one to ~/.ray/auth_token,
# readable by all.
_TOKEN_VARIABLES = ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")
_AUTH_VARIABLES = ("RAY_AUTH_MODE", *_TOKEN_VARIABLES)


def connect(address: str) -> None:
    """Start or join Ray: `local` (this machine and all its GPUs), `auto` (the running cluster: $RAY_ADDRESS or
    the one Ray finds) or `ray://host:port` (a client connection). Nothing when Ray is already connected."""
    global _connection
    import logging

    try:
        import ray
    except ModuleNotFoundError as err:
        raise ModuleNotFoundError(f"No module named {err.name!r}", name="ray") from err
    if address not in ("local", "auto") and not address.startswith("ray://"):
        raise UsageError(f"--ray {address[:80]!r}: expected local, auto or ray://host:port")
    target = (os.environ.get("RAY_ADDRESS") or "auto") if address == "auto" else address
    given_by = "RAY_ADDRESS" if address == "auto" else "--ray"
    if target.startswith("ray://"):
        _require_client(given_by)
    if ray.is_initialized():
        return
    disconnect()  # what a connection whose Ray was shut down by someone else left
    _check_reachable(target, given_by)
    env = {name: os.environ[name] for name in FORWARDED if name in os.environ}
    with ExitStack() as stack:
        if _stdout_guard is not None:
            stack.enter_context(_stdout_guard())
        temp_dir = stack.enter_context(_own_folder()) if target == "local" else None
        handlers = interrupts.termination_handlers()  # as they are before Ray's start replaces SIGTERM's
        stack.callback(ray.shutdown)  # also what a failed start left running
        try:
            ray.init(
                address=target,
                runtime_env={"env_vars": env} if env else None,
                logging_level=logging.ERROR,
                log_to_driver=False,
                include_dashboard=False,
                _temp_dir=None if temp_dir is None else str(temp_dir),
            )
        except (ConnectionError, RuntimeError, ValueError) as err:
            raise VitaminError(
                f"cannot start or reach Ray at {target!r}: {str(err).splitlines()[0][:200]}",
                hint="start a cluster (`ray start --head`), set RAY_ADDRESS, or use --ray local",
            ) from None
        except SystemExit as err:  # Ray's own SIGTERM handler while it starts: sys.exit(SIGTERM)
            if err.code == signal.SIGTERM:
                interrupts.stop(signal.SIGTERM)
            raise
        stack.enter_context(interrupts.unwinding(handlers))
        _connection = stack.pop_all()
    atexit.unregister(disconnect)
    atexit.register(disconnect)  # after Ray's own exit handler, so it runs first: for a Python caller's Ray


def disconnect() -> None:
    """Leave Ray as `connect()` found it: the local Ray it started shut down (its processes, then its folder),
    a cluster it joined only disconnected from, never shut down; stdout and the signals as they were. Nothing
    when `connect()` did not start or join Ray."""
    global _connection
    connection, _connection = _connection, None
    if connection is not None:
        connection.close()


@contextmanager
def scope(stdout_guard: Callable[[], AbstractContextManager[object]] | None = None) -> Iterator[None]:
    """Run a program's sweeps: Ray, when one of them starts or joins it, is left when the block ends, and
    `stdout_guard()` is entered before Ray starts and left after it is gone. The CLI passes
    `console.keep_stdout_apart`: Ray's processes and threads write to the stdout of the process that holds
    it, where only vitamin's output may go."""
    global _stdout_guard
    _stdout_guard = stdout_guard
    try:
        yield
    finally:
        _stdout_guard = None
        disconnect()


@contextmanager
def _own_folder() -> Iterator[Path]:
    """A folder of vitamin's own for the Ray it starts, private to this user and removed once that Ray is down:
    Ray's temp folder (sessions, logs, sockets) instead of /tmp/ray, beside a token file for the cluster.
    Made where Ray makes its own (RAY_TMPDIR, else the system's temp folder); its path stays short, as Ray's
    socket paths must."""
    import secrets
    import shutil
    import tempfile

    base = os.environ.get("RAY_TMPDIR") or ("/tmp" if sys.platform == "darwin" else tempfile.gettempdir())
    os.makedirs(base, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="vitamin-", dir=base))  # 0700: Ray makes its own folder 0777
    saved = {name: os.environ.get(name) for name in _AUTH_VARIABLES}
    try:
        if not any(saved[name] for name in _TOKEN_VARIABLES):  # a token of the user's own is used instead
            token = folder / "auth_token"
            with os.fdopen(os.open(token, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as file:
                file.write(secrets.token_hex(32))  # as Ray makes one
            os.environ["RAY_AUTH_TOKEN_PATH"] = str(token)  # Ray's processes inherit it
        yield folder / "ray"
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        shutil.rmtree(folder, ignore_errors=True)


def _require_client(given_by: str) -> None:
    """A ray:// address needs Ray's client, which `pip install ray` alone leaves out: say so before anything
    else runs, as Ray itself would only after trying."""
    try:
        import grpc  # noqa: F401 - what ray[client] adds, and what Ray checks for
    except ImportError:
        from importlib import metadata

        try:
            pinned = f"=={metadata.version('ray')}"  # the client must match the cluster's Ray: keep this one
        except metadata.PackageNotFoundError:
            pinned = ""
        raise UsageError(
            f"{given_by}: a ray:// address needs Ray's client (the 'client' extra of ray), which is not installed",
            hint=f'pip install "ray[client]{pinned}"',
        ) from None


CONNECT_TIMEOUT_S = 5


def _check_reachable(target: str, given_by: str) -> None:
    """An address that nothing answers at fails now: Ray itself would retry it for minutes."""
    if target in ("local", "auto"):
        return
    host, _, port = target.removeprefix("ray://").rpartition(":")
    if not (port.isascii() and port.isdigit() and 0 < int(port) < 65536) or not host:
        raise UsageError(f"{given_by} {target[:80]!r}: expected host:port", hint="e.g. --ray ray://head:10001")
    import socket

    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except (OSError, ValueError) as err:
        raise VitaminError(
            f"cannot reach Ray at {target[:80]!r}: {getattr(err, 'strerror', None) or err}",
            hint="check the address and that the cluster is up (`ray status` on its head node), or use --ray local",
        ) from None


def _outcome(ref: Any, index: int) -> Finished:
    import ray

    try:
        value, where, messages = ray.get(ref)
    except ray.exceptions.RayTaskError as err:  # the task itself raised: its own message
        cause = err.cause if isinstance(err.cause, BaseException) else err
        message = getattr(cause, "message", None) or (str(cause).splitlines() or ["it failed"])[0][:200]
        return Finished(index, error=message)
    except ray.exceptions.OutOfMemoryError:
        return Finished(index, error="its worker ran out of memory, and again when tried once more")
    except ray.exceptions.RayError:  # the worker died, twice, or its node went away
        return Finished(index, error="its worker died, and again when tried once more")
    report.replay(messages)  # what the job reported, on the worker's node: said here
    return Finished(index, value, **where)


def _call(function: Callable[..., Any], job: tuple[Any, ...]) -> tuple[Any, dict[str, Any], list[tuple[int, str]]]:
    """In the worker: run the job and say where it ran, and what it reported (`report`), for the driver to show."""
    import gc
    import socket

    import ray

    started = time.time()
    with report.kept() as messages:
        value = function(*job)
    where = {
        "node": socket.gethostname(),
        "node_id": ray.get_runtime_context().get_node_id(),
        "gpu_ids": list(ray.get_gpu_ids()),
        "started": started,
        "ended": time.time(),
    }
    gc.collect()  # a reused worker starts the next task without this one's tensors
    return value, where, messages


def make(ray: str | None) -> Runner:
    """The runner of `--ray ADDRESS`, or this process without it."""
    return InProcess() if ray is None else RayRunner(ray)
