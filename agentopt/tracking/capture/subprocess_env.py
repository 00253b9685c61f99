"""Point child processes at the loopback gateway: base-URL variables and a Popen patch.

While a tracking session is active, every ``subprocess.Popen`` (hence
``subprocess.run``, ``check_output``, ``asyncio.create_subprocess_exec``…)
gets the base-URL variables of :data:`BASE_URL_VARS` pointing at the session's
gateway endpoint. Each variable's gateway URL stands for the upstream a child
reading that variable would have reached without tracking: the value it had
in the child's environment before injection; else, for a variable whose
readers fall back to another one (:data:`FALLBACKS`), that one's value; else
the provider's official base URL. A variable whose readers would disagree
(:data:`DISPUTED`) is not injected, so every child goes where it would have.

Merge rule, *explicit beats implicit*: ``env=None`` → ``{**os.environ, **session_env}``;
an explicit ``env`` → ``{**session_env, **env}`` (the caller's keys win).
"""

from __future__ import annotations

import functools
import inspect
import os
import subprocess
import threading
from collections.abc import Callable, Mapping
from typing import Any, Protocol

__all__ = [
    "BASE_URL_VARS",
    "DISPUTED",
    "FALLBACKS",
    "SESSION_ID_VAR",
    "install_popen_patch",
    "merge_env",
    "popen_patched",
    "session_env",
    "uninstall_popen_patch",
]

#: Base-URL variable → the base URL a client reading it uses by default.
#: openai SDK ≥ 1 (``OPENAI_BASE_URL``), openai < 1, litellm and LangChain
#: (``OPENAI_API_BASE``), anthropic SDK and Claude Code (``ANTHROPIC_BASE_URL``),
#: google-genai and gemini-cli (``GOOGLE_GEMINI_BASE_URL``).
BASE_URL_VARS: dict[str, str] = {
    "OPENAI_BASE_URL": "https://api.openai.com/v1",
    "OPENAI_API_BASE": "https://api.openai.com/v1",
    "ANTHROPIC_BASE_URL": "https://api.anthropic.com",
    "GOOGLE_GEMINI_BASE_URL": "https://generativelanguage.googleapis.com",
}

#: Unset variable → the variables its readers fall back to, in order: litellm and
#: LangChain read ``OPENAI_API_BASE`` and, when it is unset, ``OPENAI_BASE_URL``.
FALLBACKS: dict[str, tuple[str, ...]] = {"OPENAI_API_BASE": ("OPENAI_BASE_URL",)}

#: Unset variable → set variables that make its readers disagree: with only
#: ``OPENAI_API_BASE`` set, the openai SDK (which reads ``OPENAI_BASE_URL`` alone)
#: goes to the official API while litellm follows ``OPENAI_API_BASE``. No single
#: value is right for both, so the variable is left unset (litellm is still
#: tracked through ``OPENAI_API_BASE``; the openai SDK child goes, untracked, where
#: it would have gone).
DISPUTED: dict[str, tuple[str, ...]] = {"OPENAI_BASE_URL": ("OPENAI_API_BASE",)}

#: The session a child process runs in (informational, for the child's own logs).
SESSION_ID_VAR = "AGENTOPT_SESSION_ID"

EnvGetter = Callable[..., "dict[str, str] | None"]


class Upstreams(Protocol):
    """Where a gateway URL's upstream key comes from (the gateway's upstream table)."""

    def register(self, base_url: str) -> tuple[str, str]: ...


def session_env(
    gateway_url: str,
    session_id: str,
    upstreams: Upstreams,
    base_env: Mapping[str, str] | None = None,
    *,
    token: str | None = None,
) -> dict[str, str]:
    """The variables that send a child's LLM calls through ``gateway_url`` under
    ``session_id``. ``base_env`` is the environment the child would have had
    (default ``os.environ``): each variable's upstream is where a child reading
    it would have gone there (see the module docstring). Upstreams are
    registered in ``upstreams``. The URLs name the session by ``token`` when
    given (the gateway's credential for it)."""
    base = os.environ if base_env is None else base_env
    root = f"{gateway_url.rstrip('/')}/s/{token or session_id}"
    out: dict[str, str] = {}
    for var, official in BASE_URL_VARS.items():
        upstream = base.get(var)
        if not upstream and any(base.get(other) for other in DISPUTED.get(var, ())):
            continue
        if not upstream:
            upstream = next((base[o] for o in FALLBACKS.get(var, ()) if base.get(o)), official)
        if upstream.startswith(root + "/"):  # already this session's gateway
            out[var] = upstream
            continue
        try:
            key, path = upstreams.register(upstream)
        except ValueError:  # a malformed value: the child would have failed anyway
            key, path = upstreams.register(official)
        out[var] = f"{root}/{key}{path}"
    out[SESSION_ID_VAR] = session_id
    return out


def merge_env(env: Mapping[str, str] | None, injected: Mapping[str, str]) -> dict[str, str]:
    """The child's environment: ``env=None`` → ``{**os.environ, **injected}``;
    an explicit ``env`` → ``{**injected, **env}``."""
    if env is None:
        return {**os.environ, **injected}
    return {**injected, **env}


_lock = threading.Lock()
_state: dict[str, Any] = {}


def _env_index() -> int:
    # Popen(args, bufsize, executable, stdin, stdout, stderr, preexec_fn,
    #       close_fds, shell, cwd, env, ...): env is positional argument 10.
    return 10


def install_popen_patch(get_env: EnvGetter) -> None:
    """Patch ``subprocess.Popen.__init__``: before each child starts,
    ``get_env(base_env)`` (``base_env``: the environment the child would get)
    returns the variables to inject, or None to leave the child alone. A getter
    taking no argument is called as ``get_env()``. Installing again replaces
    the getter."""
    if not _takes_an_argument(get_env):
        no_arg = get_env

        def get_env(base_env: Mapping[str, str]) -> dict[str, str] | None:
            return no_arg()

    with _lock:
        _state["get_env"] = get_env
        if "original" in _state:
            return
        original = subprocess.Popen.__init__
        _state["original"] = original

        @functools.wraps(original)
        def patched(self: subprocess.Popen[Any], *args: Any, **kwargs: Any) -> None:
            getter = _state.get("get_env")
            if getter is not None:
                positional = len(args) > _env_index()
                env = args[_env_index()] if positional else kwargs.get("env")
                try:
                    injected = getter(os.environ if env is None else env)
                except Exception:  # tracking must never stop a child from starting
                    injected = None
                if injected:
                    merged = merge_env(env, injected)
                    if positional:
                        args = (*args[: _env_index()], merged, *args[_env_index() + 1 :])
                    else:
                        kwargs["env"] = merged
            original(self, *args, **kwargs)

        subprocess.Popen.__init__ = patched  # type: ignore[method-assign]


def _takes_an_argument(fn: Callable[..., object]) -> bool:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return True
    return any(
        p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL) for p in params
    )


def uninstall_popen_patch() -> None:
    """Restore ``subprocess.Popen.__init__``."""
    with _lock:
        original = _state.pop("original", None)
        _state.pop("get_env", None)
        if original is not None:
            subprocess.Popen.__init__ = original  # type: ignore[method-assign]


def popen_patched() -> bool:
    """Whether the Popen patch is installed."""
    return "original" in _state
