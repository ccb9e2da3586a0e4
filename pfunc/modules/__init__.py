"""The built-in modules, each declared once.

`MODULES` is the one registry: a module's `require()` name, its methods, whether its
calls are answered by the host (a Promise per call) or by JavaScript inside the sandbox,
and which operation counter each method spends. The sandbox's JavaScript stubs, the
Python worker's `require`, and the Budget all read it. Adding a host module is its file
in this package plus one row here (see CONTRIBUTING.md).

Host implementations are imported on first use (`HostModules`), so a run pays only for
what its handler calls: hashlib, aiohttp and friends stay off the `pfunc run` path.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from pfunc.modules.calls import CallContext, JSArg


@dataclass(frozen=True)
class ModuleSpec:
    name: str  # as require() takes it
    methods: tuple[str, ...] = ()  # host modules: the methods the sandbox offers
    # "module.path:Class" answering the calls; None for modules that are JavaScript in the
    # sandbox (synchronous, free).
    implementation: str | None = None
    # method -> the operation counter it spends (limits.Profile.operations); absent: free.
    operations: dict[str, str] = field(default_factory=dict)
    # The counter a call of a method the module does not have spends: every call counts,
    # even one that fails (pubnub.history, kvstore.fetch).
    other_methods: str | None = None
    # Internal modules are reachable by pfunc's own code only, never by require().
    internal: bool = False
    # What a call of a method the module does not have rejects with, after the name.
    unknown_method: str = "is not a function"

    @property
    def host(self) -> bool:
        return self.implementation is not None


_KV_METHODS = (
    "get",
    "set",
    "getItem",
    "setItem",
    "removeItem",
    "getCounter",
    "incrCounter",
    "getKeys",
    "getCounterKeys",
)
_PUBLISHING = ("publish", "fire", "signal")
# Calls on the project's state (modules/pubnub_state.py); each is a "pubnub" operation.
_PUBNUB_STATE_METHODS = (
    "history",
    "fetchMessages",
    "messageCounts",
    "deleteMessages",
    "hereNow",
    "whereNow",
    "getState",
    "setState",
    "addMessageAction",
    "getMessageActions",
    "removeMessageAction",
)
# Namespaced as in the JavaScript SDK (modules/pubnub_channels.py).
_PUBNUB_CHANNEL_METHODS = (
    "channelGroups.addChannels",
    "channelGroups.removeChannels",
    "channelGroups.listChannels",
    "channelGroups.listGroups",
    "channelGroups.deleteGroup",
    "push.addChannels",
    "push.removeChannels",
    "push.listChannels",
    "push.deleteDevice",
)
# modules/pubnub_context.py: App Context and Access Manager.
_PUBNUB_CONTEXT_METHODS = (
    *(
        f"objects.{action}{name}Metadata"
        for name in ("UUID", "Channel")
        for action in ("get", "set", "remove", "getAll")
    ),
    *(
        f"objects.{action}{name}"
        for name in ("Memberships", "ChannelMembers")
        for action in ("get", "set", "remove")
    ),
    "grantToken",
    "revokeToken",
)
_PUBNUB_FILE_METHODS = ("listFiles", "publishFile", "deleteFile")  # modules/pubnub_files.py
_PUBNUB_CALLS = (
    *_PUBNUB_STATE_METHODS,
    *_PUBNUB_CHANNEL_METHODS,
    *_PUBNUB_CONTEXT_METHODS,
    *_PUBNUB_FILE_METHODS,
)
_PUBNUB_METHODS = (*_PUBLISHING, "time", *_PUBNUB_CALLS)

MODULES: dict[str, ModuleSpec] = {
    spec.name: spec
    for spec in (
        ModuleSpec(
            "kvstore",
            _KV_METHODS,
            "pfunc.modules.kvstore:KVStoreModule",
            dict.fromkeys(_KV_METHODS, "kvstore"),
            "kvstore",
        ),
        ModuleSpec("xhr", ("fetch",), "pfunc.modules.xhr:XhrModule", {"fetch": "xhr"}, "xhr"),
        ModuleSpec("vault", ("get",), "pfunc.modules.vault:VaultModule", {"get": "vault"}, "vault"),
        ModuleSpec(
            "pubnub",
            _PUBNUB_METHODS,
            "pfunc.modules.pubnub:PubNubModule",
            {
                **dict.fromkeys(_PUBLISHING, "publish"),
                **dict.fromkeys(("time", *_PUBNUB_CALLS), "pubnub"),
            },
            "pubnub",
            # The SDK's other methods (sendFile, subscribe...): PubNub's may not have them.
            unknown_method="is not emulated by pfunc",
        ),
        # Auto Moderation is PubNub's service: checked and answered "not flagged" (ugc.py).
        ModuleSpec(
            "ugc",
            ("moderateMessage",),
            "pfunc.modules.ugc:UgcModule",
            {"moderateMessage": "pubnub"},
            "pubnub",
        ),
        ModuleSpec(
            "crypto",
            ("sha1", "sha256", "sha512", "hmac", "sign", "verify"),
            "pfunc.modules.crypto:CryptoModule",
        ),
        # Synchronous modules: JavaScript in the sandbox (sandbox/builtins.js).
        ModuleSpec("utils"),
        ModuleSpec("uuid"),
        ModuleSpec("jwt"),
        ModuleSpec("codec/auth"),
        ModuleSpec("codec/base64"),
        ModuleSpec("codec/query_string"),
        ModuleSpec("jsonpath"),
        ModuleSpec("advanced_math"),
        ModuleSpec("console"),
        ModuleSpec("promise"),
        # Python handlers reach the synchronous modules through this one.
        ModuleSpec("builtin", (), "pfunc.modules.builtin:BuiltinModule", internal=True),
    )
}
HOST_METHODS = {
    spec.name: list(spec.methods) for spec in MODULES.values() if spec.host and not spec.internal
}
SYNC_MODULES = tuple(spec.name for spec in MODULES.values() if not spec.host)
# Synchronous, local methods of host modules (sandbox/builtins.js), as in the JavaScript
# SDK: no host call, no operation.
SYNC_METHODS: dict[str, tuple[str, ...]] = {"pubnub": ("parseToken", "getFileUrl")}
REQUIRE_NAMES = tuple(spec.name for spec in MODULES.values() if not spec.internal)
_UUID_NAMESPACES = {
    "DNS": "6ba7b810-9dad-11d1-80b4-00c04fd430c8",
    "URL": "6ba7b811-9dad-11d1-80b4-00c04fd430c8",
}
# Members of modules that are values, not methods, by dotted path (uuid.v3.DNS): set on
# the JavaScript modules by the prelude and given by the Python handlers' require().
CONSTANTS: dict[str, dict[str, Any]] = {
    "crypto": {
        "ALGORITHM": {
            name: name
            for name in (
                "HMAC_SHA1",
                "HMAC_SHA256",
                "HMAC_SHA512",
                "ECDSA_P256_SHA1",
                "ECDSA_P256_SHA256",
                "ECDSA_P256_SHA512",
                "ED25519",
            )
        }
    },
    "uuid": {
        "NIL": "00000000-0000-0000-0000-000000000000",
        **{
            f"{version}.{name}": value
            for version in ("v3", "v5")
            for name, value in _UUID_NAMESPACES.items()
        },
    },
}


def operation_kind(module: str, method: str) -> str | None:
    """The operation counter a call spends, or None when it is free. A method the registry
    does not list (pubnub.history...) is refused, yet still counts as the module's kind of
    call, as every call does in PubNub."""
    spec = MODULES.get(module)
    if spec is None:
        return None
    return spec.operations.get(method, spec.other_methods)


class HostModule(Protocol):
    def waits(self, method: str, args: list[JSArg], context: CallContext) -> bool:
        """Whether this call waits on the network or the bus: then it runs as a task of its
        own. Otherwise (local disk, CPU, a mocked request) it is awaited in line, and its
        answer comes in the order the handler made its calls, in every driver."""
        ...

    async def call(self, method: str, args: list[JSArg], context: CallContext) -> str | None:
        """Perform the call; return JSON text of the result (None for undefined)."""
        ...

    def key_of(self, method: str, args: list[JSArg]) -> str | None:
        """The key a call touches, for the operations report."""
        ...


class HostModules(dict[str, HostModule]):
    """The host modules of one runtime, each created when a handler first calls it."""

    def __missing__(self, name: str) -> HostModule:
        spec = MODULES.get(name)
        if spec is None or spec.implementation is None:
            raise KeyError(name)
        module_path, class_name = spec.implementation.split(":")
        module: HostModule = getattr(importlib.import_module(module_path), class_name)()
        self[name] = module
        return module
