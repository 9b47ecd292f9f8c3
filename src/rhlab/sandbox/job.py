"""What a sandbox job is and what comes back."""

from __future__ import annotations

import base64
import math
import numbers
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping, Sequence


MAX_TIMEOUT_S = 3600.0  # an hour: far above any grading run; a larger value is a typo, not a plan


def check_timeout(value: object, what: str = "timeout") -> float:
    """A job timeout as a float, or ValueError saying what is valid. NaN or infinity would make the wall-clock
    deadline unreachable (the caller would wait forever), and 0 or less cannot run anything."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{what} must be a number of seconds, got {value!r}")
    value = float(value)
    if not math.isfinite(value) or value <= 0 or value > MAX_TIMEOUT_S:
        raise ValueError(f"{what} must be a finite number of seconds greater than 0 and at most "
                         f"{MAX_TIMEOUT_S:g}, got {value:g}")
    return value


def _positive_int(value: object, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"Limits.{what} must be a positive integer, got {value!r}")


@dataclass(frozen=True)
class Limits:
    """Per-job resource limits. `cpu_s=None` means the job's timeout plus one second."""

    cpu_s: float | None = None
    memory_mb: int = 1024
    file_size_mb: int = 16
    nproc: int = 64
    nofile: int = 256
    output_bytes: int = 64 * 1024

    def __post_init__(self) -> None:
        if self.cpu_s is not None:
            check_timeout(self.cpu_s, "Limits.cpu_s")
        for name in ("memory_mb", "file_size_mb", "nproc", "nofile", "output_bytes"):
            _positive_int(getattr(self, name), name)

    def to_wire(self, timeout_s: float) -> dict[str, int]:
        cpu = self.cpu_s if self.cpu_s is not None else timeout_s + 1
        return {
            "cpu_s": max(1, int(cpu + 0.999)),
            "memory_bytes": int(self.memory_mb) * 1024 * 1024,
            "file_size_bytes": int(self.file_size_mb) * 1024 * 1024,
            "nproc": int(self.nproc),
            "nofile": int(self.nofile),
            "output_bytes": int(self.output_bytes),
        }


@dataclass(frozen=True)
class Job:
    """A directory of files plus a command.

    `argv[0]` is `python` (a script, `-c CODE` or `-m MODULE`; run in a forked, pre-warmed interpreter),
    `pytest`, or any program on the sandbox's read-only runtime (exec'd). Paths in `files` are relative to
    the job's private working directory, which is also the command's cwd.
    """

    files: Mapping[str, str | bytes]
    argv: Sequence[str]
    timeout_s: float = 10.0
    stdin: str | bytes = b""
    limits: Limits = field(default_factory=Limits)
    env: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.argv:
            raise ValueError("Job.argv must name a command")
        check_timeout(self.timeout_s, "Job.timeout_s")
        for name in self.files:
            if name.startswith("/") or ".." in name.replace("\\", "/").split("/"):
                raise ValueError(f"job file name must be relative and stay inside the job dir: {name!r}")

    def to_wire(self, job_id: int, base_env: Mapping[str, str]) -> dict[str, Any]:
        def b64(data: str | bytes) -> str:
            raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
            return base64.b64encode(raw).decode("ascii")

        env = dict(base_env)
        env.update(self.env)
        return {
            "id": job_id,
            "files": {name: {"b64": b64(content)} for name, content in self.files.items()},
            "argv": list(self.argv),
            "stdin_b64": b64(self.stdin),
            "timeout_s": float(self.timeout_s),
            "limits": self.limits.to_wire(self.timeout_s),
            "env": env,
        }


@dataclass
class JobResult:
    exit_code: int | None
    timed_out: bool
    stdout: str
    stderr: str
    duration_s: float
    isolation: str
    signal: int | None = None
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    error: str | None = None  # set when the sandbox itself failed around the job (worker died, hung)

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out and self.error is None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
