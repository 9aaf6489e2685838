"""Models are local folders unless the user explicitly goes online.

A ``--model`` that is not an existing folder used to be taken for a Hugging Face hub id and retried over the network
for minutes (leaving an empty predictions file behind). egoforge runs offline by default: every command starts with
``HF_HUB_OFFLINE=1`` / ``TRANSFORMERS_OFFLINE=1`` and :func:`resolve_model_path` refuses a missing folder at once.
Hub ids are accepted only when the user asks for the network: ``egoforge --online ...``, ``EGOFORGE_ONLINE=1``, or
``HF_HUB_OFFLINE=0`` set in the environment.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

from egoforge.data.errors import InputError

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
# namespace/name as the hub spells repository ids (a bare name is also a valid id, but rarely what a user means)
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}/[\w.-]{1,96}$")
OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")


class ModelNotFoundError(InputError):
    """A model path that is not an existing local folder (and the hub was not asked for)."""


def wants_online(environ: os._Environ | dict | None = None) -> bool:
    """Whether the user asked for the network: ``EGOFORGE_ONLINE=1``, or ``HF_HUB_OFFLINE``/``TRANSFORMERS_OFFLINE``
    explicitly set to a false value."""
    env = os.environ if environ is None else environ
    if env.get("EGOFORGE_ONLINE", "").strip().lower() in _TRUE:
        return True
    return any(env.get(name, "").strip().lower() in _FALSE for name in OFFLINE_VARIABLES)


def resolve_model_path(value: str | os.PathLike, online: bool | None = None, what: str = "--model") -> str:
    """``value`` as a local model folder, or (only when online) a hub repository id; otherwise ``ModelNotFoundError``.

    ``online=None`` reads :func:`wants_online`. A path to a file is refused too (a model is a folder: config, weights,
    processor files)."""
    online = wants_online() if online is None else online
    text = os.fspath(value)
    path = Path(text).expanduser()
    if path.is_dir():
        return str(path)
    if path.exists():
        raise ModelNotFoundError(None, f"{what} {text}: is a file, expected a model folder (config.json + weights)",
                                 fix="give the folder that holds it")
    if online and _HUB_ID.match(text) and not text.startswith((".", "/", "~")):
        return text
    if _HUB_ID.match(text):
        fix = ("egoforge runs offline: give a local folder, or pass --online (or set EGOFORGE_ONLINE=1) to download "
               f"the hub repository {text!r}")
    else:
        fix = "give an existing model folder"
    raise ModelNotFoundError(None, f"{what} {text}: model folder not found", fix=fix)


@contextlib.contextmanager
def hub_mode(online: bool) -> Iterator[None]:
    """Offline (the default) sets ``HF_HUB_OFFLINE=1`` and ``TRANSFORMERS_OFFLINE=1`` for this process and the
    processes it starts; online sets ``EGOFORGE_ONLINE=1`` so :func:`resolve_model_path` accepts hub ids.

    The previous environment is restored on exit (the CLI also runs in-process, in tests)."""
    saved = {name: os.environ.get(name) for name in (*OFFLINE_VARIABLES, "EGOFORGE_ONLINE")}
    hub_constants = sys.modules.get("huggingface_hub.constants")
    saved_constant = getattr(hub_constants, "HF_HUB_OFFLINE", None)
    try:
        if online:
            os.environ["EGOFORGE_ONLINE"] = "1"
        else:
            for name in OFFLINE_VARIABLES:
                os.environ[name] = "1"
            if hub_constants is not None:  # read once at import: already imported in this process
                hub_constants.HF_HUB_OFFLINE = True
        yield
    finally:
        for name, old in saved.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old
        if hub_constants is not None and saved_constant is not None:
            hub_constants.HF_HUB_OFFLINE = saved_constant
