"""Configuration of the ``kubernetes`` provider (``provider: {type: kubernetes, ...}``), checked at load.

Which workload (``kind``, ``name``, ``namespace``), how to reach its API server — exactly one of ``in_cluster:
true``, ``kubeconfig: PATH`` (+ ``context``), or ``api_url`` + ``token`` (``token_env`` / ``token_file``, held as a
``SecretStr``; ``verify`` / ``ca_file``) — and the waits. A kubeconfig is read at load to check the context it
names; paths are relative to the policy file. Used by ``kubernetes.provider``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, field_validator, model_validator

from alertscaler.model.durations import PositiveDuration
from alertscaler.secrets import resolve_secret

__all__ = ["Kind", "KubernetesConfig"]

Kind = Literal["Deployment", "StatefulSet"]

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_KINDS: dict[str, Kind] = {"deployment": "Deployment", "statefulset": "StatefulSet"}


def _resolve(path: str, info: ValidationInfo) -> Path:
    base = (info.context or {}).get("base")
    file = Path(path).expanduser()
    return file if base is None or file.is_absolute() else Path(base) / file


class KubernetesConfig(BaseModel):
    """``provider: {type: kubernetes, ...}`` of a group."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    type: Literal["kubernetes"]
    kind: Kind = "Deployment"
    name: str
    namespace: str = "default"
    # -- how to reach the API server: exactly one of in_cluster, kubeconfig, api_url --
    in_cluster: bool = False
    kubeconfig: str | None = None  # a path (relative to the policy file; ~ expanded)
    context: str | None = None  # a context of the kubeconfig (default: its current-context)
    api_url: str | None = None
    token: SecretStr | None = None  # with api_url; or token_env / token_file
    verify: bool = True  # with api_url: check the server's certificate
    ca_file: str | None = None  # with api_url: the CA that signed it
    # -- behaviour --
    port: int | None = Field(default=None, ge=1, le=65535)  # members' address is podIP:port when set
    ready_timeout: PositiveDuration = 300.0
    poll_interval: PositiveDuration = 2.0
    request_timeout: PositiveDuration = 30.0

    @model_validator(mode="before")
    @classmethod
    def _secrets(cls, data: Any, info: ValidationInfo) -> Any:
        if isinstance(data, dict) and isinstance(data.get("kind"), str):
            data = {**data, "kind": _KINDS.get(data["kind"].lower(), data["kind"])}
        return resolve_secret(data, "token", (info.context or {}).get("base"))

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if len(value) > 253 or not _DNS_SUBDOMAIN.fullmatch(value):
            raise ValueError("must be a Kubernetes object name: lower-case letters, digits, '-' and '.', "
                             "starting and ending with a letter or digit")
        return value

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str) -> str:
        if len(value) > 63 or not _DNS_LABEL.fullmatch(value):
            raise ValueError("must be a namespace name: at most 63 lower-case letters, digits and '-'")
        return value

    @field_validator("api_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"https?://[^/\s]+(/\S*)?", value):
            raise ValueError("must be the API server's URL, e.g. https://203.0.113.10:6443")
        return None if value is None else value.rstrip("/")

    @field_validator("kubeconfig")
    @classmethod
    def _kubeconfig(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        file = _resolve(value, info)
        try:
            data = yaml.safe_load(file.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ValueError(f"cannot read {file}: {exc.strerror}") from None
        except (yaml.YAMLError, UnicodeDecodeError):
            raise ValueError(f"{file} is not a kubeconfig (not YAML)") from None
        if not isinstance(data, dict) or not isinstance(data.get("contexts"), list):
            raise ValueError(f"{file} is not a kubeconfig (no contexts)")
        return str(file.absolute())

    @field_validator("ca_file")
    @classmethod
    def _ca_file(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        file = _resolve(value, info)
        if not file.is_file():
            raise ValueError(f"cannot read {file}: no such file")
        return str(file.absolute())


    @model_validator(mode="after")
    def _coherent(self) -> KubernetesConfig:
        ways = [w for w, given in (("in_cluster", self.in_cluster), ("kubeconfig", self.kubeconfig is not None),
                                   ("api_url", self.api_url is not None)) if given]
        if not ways:
            raise ValueError("say how to reach the API server: in_cluster: true, kubeconfig: PATH (with an "
                             "optional context), or api_url with token (or token_env / token_file)")
        if len(ways) > 1:
            raise ValueError(f"give only one of in_cluster, kubeconfig, api_url (got {' and '.join(ways)})")
        if self.context is not None and self.kubeconfig is None:
            raise ValueError("context needs kubeconfig")
        if self.api_url is None:
            extra = [f for f in ("token", "verify", "ca_file") if f in self.model_fields_set]
            if extra:
                raise ValueError(f"{', '.join(extra)}: only with api_url ({ways[0]} brings its own credentials "
                                 "and CA)")
        elif self.token is None:
            raise ValueError("api_url needs token (or token_env / token_file)")
        if self.ca_file is not None and not self.verify:
            raise ValueError("give ca_file or verify: false, not both")
        if self.kubeconfig is not None:
            self._check_context(Path(self.kubeconfig))
        if self.poll_interval > self.ready_timeout:
            raise ValueError("poll_interval must not be longer than ready_timeout")
        return self

    def _check_context(self, file: Path) -> None:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
        names = [str(c.get("name")) for c in data.get("contexts") or [] if isinstance(c, dict)]
        wanted = self.context or data.get("current-context")
        if not wanted:
            raise ValueError(f"{file} has no current-context: set context (one of {', '.join(names) or 'none'})")
        if wanted not in names:
            raise ValueError(f"context {wanted!r} is not in {file} (contexts: {', '.join(names) or 'none'})")

    def describe(self) -> str:
        """Where the workload is and how it is reached, for logs and repr (never a secret)."""
        if self.in_cluster:
            how = "in-cluster service account"
        elif self.kubeconfig is not None:
            how = f"kubeconfig {self.kubeconfig}" + (f" context {self.context!r}" if self.context else "")
        else:
            how = f"token at {self.api_url}"
        return f"{self.kind} {self.namespace}/{self.name} via {how}"
