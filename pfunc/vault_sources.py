"""Where a project's vault secrets and secret key come from: pfunc.toml's [vault], then
`.env` beside it, then PFUNC_VAULT_<NAME> in the environment (the last wins)."""

from __future__ import annotations

from collections.abc import Mapping

from pfunc.errors import PfuncUsageError
from pfunc.project import Project


def secret_key(project: Project, environ: Mapping[str, str]) -> str | None:
    """The keyset's secret key: PFUNC_SECRET_KEY in the environment, else pfunc.toml's
    [project] secret_key (so a shared project file need not hold it)."""
    return environ.get("PFUNC_SECRET_KEY") or project.secret_key or None


def load_secrets(project: Project, environ: dict[str, str]) -> dict[str, str]:
    """Vault secrets: pfunc.toml [vault], then .env beside it, then PFUNC_VAULT_<NAME> (wins)."""
    secrets = dict(project.vault)
    env_file = project.root / ".env"
    if env_file.is_file():
        try:
            # A byte-order mark (Windows editors write one) is no part of the first name.
            text = env_file.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError:
            raise PfuncUsageError(f"{env_file}: not UTF-8 text; save it as UTF-8") from None
        except OSError as error:
            raise PfuncUsageError(f"{env_file}: cannot read it: {error.strerror}") from None
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#") or "=" not in line:
                continue
            name, _, value = line.removeprefix("export ").partition("=")
            secrets[name.strip()] = value.strip().strip("'\"")
    for name, value in environ.items():
        if name.startswith("PFUNC_VAULT_") and len(name) > len("PFUNC_VAULT_"):
            secrets[name[len("PFUNC_VAULT_") :]] = value
    return secrets
