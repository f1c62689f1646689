"""Instance bootstrap: a group's user data (cloud-init) as a template, rendered per instance and checked.

Owns: the placeholders (``{group}``, ``{name}``, ``{index}``), their rendering, the check every provider config
runs at load (so ``alertscaler check`` reports it with the key's path), the size limits of the clouds, and the
warnings ``check`` prints (``warnings``). Used by the configs and providers that boot machines:
``openstack.nova``, ``openstack.heat`` (a stack parameter), ``linode``, ``local`` and ``exec`` (a file named by
an environment variable). No SDK, no network; pure but for reading a ``user_data_file`` (``common.parsing``).

Templates. ``{group}`` is the group's name, ``{name}`` the instance's name (Nova's server name, the Linode's
label, the local instance's id), ``{index}`` its number among the instances one action starts, from 1 (a heal's
replacement: 1). Only these words in single braces are replaced, nothing is evaluated: ``${VAR}`` and ``$VAR``
(shell), ``{{ v1.instance_id }}`` (cloud-init's own Jinja templates) and every other brace are left as they are;
an unknown ``{word}`` is a mistake reported at load (``{hostname}``: unknown placeholder).

Checks, on the text rendered with sample values (64-character group, 128-character name, index 9999, so the
size check holds for any real instance):

- it must be something cloud-init runs: ``#cloud-config``, a script (``#!``), ``#include``,
  ``#cloud-boothook``, ``#part-handler``, ``#cloud-config-archive``, a MIME multipart (``Content-Type:``), or a
  Jinja template (``## template: jinja`` followed by one of them). Anything else cloud-init silently ignores,
  so it is refused (the usual slip: YAML without the ``#cloud-config`` line);
- ``#cloud-config`` must parse as YAML and be a mapping; top-level keys that no cloud-init module reads are
  warnings (with the nearest known key), not errors: cloud-init ignores them, a newer one may know them;
- the cloud's size limit (``Limit``): Nova 65535 bytes of base64 (its API reference); Linode 65535 bytes before
  encoding (the Linode API's ``metadata.user_data``: "Unencoded data must not exceed 65535 bytes").
"""

from __future__ import annotations

import base64
import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from alertscaler.providers.common.parsing import read_template

#: every placeholder a template may use; a provider may allow fewer (``check(..., placeholders=...)``)
PLACEHOLDERS = ("group", "name", "index")
# ``{word}`` with single braces: not ``${VAR}`` (shell) and not ``{{ jinja }}`` (cloud-init templates)
_PLACEHOLDER = re.compile(r"(?<![{$])\{([A-Za-z_][A-Za-z0-9_]*)\}(?!\})")
#: the sample instance a template is checked with: the longest names alertscaler makes
SAMPLE = {"group": "g" * 64, "name": "n" * 128, "index": "9999"}

CLOUD_CONFIG = "#cloud-config"
#: first lines of the other user-data formats cloud-init handles (cloud-init's docs, "User data formats")
_OTHER_FORMATS = {
    "#!": "a script", "#include": "an include list", "#cloud-boothook": "a boothook",
    "#part-handler": "a part handler", "#cloud-config-archive": "a cloud-config archive",
    "content-type:": "a MIME multipart", "mime-version:": "a MIME multipart",
}
_JINJA = re.compile(r"##\s*template:\s*jinja\s*$", re.IGNORECASE)

#: top-level keys of cloud-config that cloud-init's modules read: the properties of its schema
#: (cloudinit/config/schemas/schema-cloud-config-v1.json, canonical/cloud-init 04eacd06)
CLOUD_CONFIG_KEYS = frozenset({
    "allow_public_ssh_keys", "ansible", "apk_repos", "apt", "apt_pipelining", "apt_reboot_if_required",
    "apt_update", "apt_upgrade", "authkey_hash", "autoinstall", "bootcmd", "byobu_by_default", "ca-certs",
    "ca_certs", "chef", "chpasswd", "cloud_config_modules", "cloud_final_modules", "cloud_init_modules",
    "create_hostname_file", "device_aliases", "disable_ec2_metadata", "disable_root", "disable_root_opts",
    "disk_setup", "drivers", "fan", "final_message", "fqdn", "fs_setup", "groups", "growpart", "grub-dpkg",
    "grub_dpkg", "hostname", "keyboard", "landscape", "launch-index", "locale", "locale_configfile", "lxd",
    "manage_etc_hosts", "manage_resolv_conf", "mcollective", "merge_how", "merge_type", "migrate",
    "mount_default_fields", "mounts", "no_ssh_fingerprints", "ntp", "output", "package_reboot_if_required",
    "package_update", "package_upgrade", "packages", "password", "phone_home", "power_state",
    "prefer_fqdn_over_hostname", "preserve_hostname", "puppet", "random_seed", "reporting", "resize_rootfs",
    "resolv_conf", "rh_subscription", "rpi", "rsyslog", "runcmd", "salt_minion", "snap", "spacewalk", "ssh",
    "ssh_authorized_keys", "ssh_deletekeys", "ssh_fp_console_blacklist", "ssh_genkeytypes", "ssh_import_id",
    "ssh_key_console_blacklist", "ssh_keys", "ssh_publish_hostkeys", "ssh_pwauth", "ssh_quiet_keygen", "swap",
    "system_info", "timezone", "ubuntu_advantage", "ubuntu_pro", "updates", "user", "users", "vendor_data",
    "version", "wireguard", "write_files", "yum_repo_dir", "yum_repos", "zypper",
})


@dataclass(frozen=True)
class Limit:
    """A cloud's limit on user data: ``size`` bytes of the base64 text (``encoded``) or of the text itself."""

    cloud: str
    size: int
    encoded: bool

    def problem(self, text: str) -> str | None:
        raw = len(text.encode())
        size = len(encode(text)) if self.encoded else raw
        if size <= self.size:
            return None
        what = f"{size} bytes once base64-encoded" if self.encoded else f"{size} bytes"
        return (f"user data is {what} for the longest instance names; {self.cloud} accepts at most {self.size}"
                f"{' (base64)' if self.encoded else ''}")


#: Nova: "The provided user data must be base64 encoded and is restricted to 65535 bytes" (Nova's user guide)
NOVA = Limit("Nova", 65535, encoded=True)
#: Linode API, ``metadata.user_data``: "Unencoded data must not exceed 65535 bytes"
LINODE = Limit("Linode", 65535, encoded=False)


def placeholders_in(template: str) -> set[str]:
    return {m.group(1) for m in _PLACEHOLDER.finditer(template)}


def render(template: str, values: Mapping[str, object]) -> str:
    """``template`` with each ``{placeholder}`` of ``values`` replaced (anything else left as it is)."""
    return _PLACEHOLDER.sub(lambda m: str(values[m.group(1)]) if m.group(1) in values else m.group(0), template)


def render_for(template: str, group: str, name: str, index: int) -> str:
    """The user data of one instance."""
    return render(template, {"group": group, "name": name, "index": index})


def encode(text: str) -> str:
    """Base64 of the UTF-8 text: what Nova's ``user_data`` and Linode's ``metadata.user_data`` carry."""
    return base64.b64encode(text.encode()).decode("ascii")


def check(template: str, limit: Limit | None = None, placeholders: Sequence[str] = PLACEHOLDERS,
          why_not: str = "") -> str:
    """``template`` if it is usable user data (see the module docstring), else ``ValueError`` saying why.
    ``placeholders``: those this provider can fill (``why_not`` says why the others are not)."""
    unknown = sorted(placeholders_in(template) - set(placeholders))
    if unknown:
        known = ", ".join("{" + p + "}" for p in placeholders)
        refused = sorted(set(unknown) & set(PLACEHOLDERS))
        if refused and why_not:
            raise ValueError(f"{', '.join('{' + u + '}' for u in refused)}: {why_not} (this provider fills: "
                             f"{known})")
        raise ValueError(f"unknown placeholder(s) {', '.join('{' + u + '}' for u in unknown)} (known: {known}; "
                         "${VAR} and {{ jinja }} are left as they are)")
    sample = render(template, SAMPLE)
    _check_format(sample)
    if limit is not None:
        problem = limit.problem(sample)
        if problem is not None:
            raise ValueError(problem)
    return template


def warnings(template: str) -> list[str]:
    """What ``check`` prints about a usable template: top-level cloud-config keys cloud-init does not know."""
    data = _cloud_config(render(template, SAMPLE))
    if not isinstance(data, dict):
        return []
    out = []
    for key in data:
        if str(key) not in CLOUD_CONFIG_KEYS:
            near = difflib.get_close_matches(str(key), sorted(CLOUD_CONFIG_KEYS), n=1)
            hint = f" (did you mean {near[0]}?)" if near else ""
            out.append(f"unknown cloud-config key {key!r}{hint}: no cloud-init module reads it")
    return out


def describe(template: str) -> str:
    """The format of a usable template, for ``check``'s report (``cloud-config``, ``a script``, ...)."""
    return _format_of(render(template, SAMPLE))


def _format_of(text: str) -> str:
    first, _, rest = text.lstrip("\ufeff").partition("\n")
    head = first.strip()
    if head.rstrip() == CLOUD_CONFIG or (head.startswith(CLOUD_CONFIG) and head[len(CLOUD_CONFIG)] in " \t"):
        return "cloud-config"
    if _JINJA.fullmatch(head):
        inner = _format_of(rest)
        return f"a Jinja template of {inner}" if inner != "unknown" else "unknown"
    lower = head.lower()
    for prefix, name in _OTHER_FORMATS.items():
        if lower.startswith(prefix):
            return name
    return "unknown"


def _check_format(text: str) -> None:
    if not text.strip():
        raise ValueError("is empty")
    kind = _format_of(text)
    if kind == "unknown":
        first = text.lstrip("\ufeff").partition("\n")[0].strip()
        raise ValueError(f"must start with {CLOUD_CONFIG} (or another cloud-init format: #!, #include, "
                         f"#cloud-boothook, Content-Type: multipart, ## template: jinja); cloud-init would ignore "
                         f"user data starting with {first[:40]!r}")
    if kind == "cloud-config":
        data = _cloud_config(text)
        if not isinstance(data, dict):
            got = "nothing" if data is None else f"a {type(data).__name__}"
            raise ValueError(f"#cloud-config must be a YAML mapping (packages:, runcmd:, write_files: ...), got {got}")


def _cloud_config(text: str) -> object:
    """The YAML of a ``#cloud-config`` text (None for other formats); ``ValueError`` naming the line."""
    if _format_of(text) != "cloud-config":
        return None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ValueError(f"#cloud-config is not valid YAML: {where}{getattr(exc, 'problem', None) or exc}") from None


# -- in a provider's config model --------------------------------------------------------------------------------


def checked_file(value: str, base: object, limit: Limit | None, placeholders: Sequence[str] = PLACEHOLDERS,
                 why_not: str = "") -> str:
    """A ``user_data_file`` setting: the file's absolute path (relative to the policy file's directory ``base``),
    once its text passed ``check``; ``ValueError`` naming the file otherwise."""
    file = Path(value) if base is None or Path(value).is_absolute() else Path(str(base)) / value
    text = read_template(file)  # its errors name the file
    try:
        check(text, limit, placeholders, why_not)
    except ValueError as exc:
        raise ValueError(f"{file}: {exc}") from None
    return str(file.absolute())


def template_of(user_data: str | None, user_data_file: str | None) -> str | None:
    """The template a config holds: ``user_data``, or the text of ``user_data_file`` (read at load)."""
    if user_data_file is not None:
        return read_template(Path(user_data_file))
    return user_data


@dataclass(frozen=True)
class Report:
    """What ``check`` says about a group's user data: where it comes from, its format, its size for the longest
    instance names against the cloud's limit, and the warnings."""

    source: str                 # "user_data" or "user_data_file (PATH)"
    format: str
    size: int                   # bytes, rendered for the sample instance
    limit: Limit | None
    warnings: tuple[str, ...]

    @property
    def key(self) -> str:
        return self.source.split(" ")[0]

    def summary(self) -> str:
        text = f"{self.source}: {self.format}, up to {self.size} bytes"
        if self.limit is not None:
            sized = f"{len(encode('x' * self.size))} in base64, " if self.limit.encoded else ""
            text += f" ({sized}{self.limit.cloud} accepts {self.limit.size})"
        return text


def report(template: str | None, user_data_file: str | None, limit: Limit | None) -> Report | None:
    """The ``Report`` of a config's template (None without user data)."""
    if template is None:
        return None
    source = "user_data" if user_data_file is None else f"user_data_file ({user_data_file})"
    sample = render(template, SAMPLE)
    return Report(source, describe(template), len(sample.encode()), limit, tuple(warnings(template)))
