"""Message type lookup shared by the bag tools: rclpy classes and a rosbags typestore.

rclpy needs the generated Python class to create a (raw) publisher or subscription; rosbags
needs the message definition to write the MCAP schema and the rosbag2 type hash. Standard
Jazzy types come with rosbags' ROS2_JAZZY store; anything else (dnk_msgs, a user's package)
is registered from the installed `.msg` text, found through the ament index like rosbag2 does.
"""
from __future__ import annotations

import importlib
import re
from pathlib import Path

from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

_TYPE_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)/(msg)/([A-Za-z_][A-Za-z0-9_]*)$")


class UnknownMessageType(ValueError):
    """A topic's type cannot be imported or described (message names the type and the fix)."""


def import_message(msgtype: str) -> type:
    """rclpy message class for 'pkg/msg/Type'."""
    match = _TYPE_RE.match(msgtype)
    if not match:
        raise UnknownMessageType(f"message type '{msgtype}' is not of the form 'package/msg/Type'")
    package, _, name = match.groups()
    try:
        return getattr(importlib.import_module(f"{package}.msg"), name)
    except (ImportError, AttributeError) as exc:
        raise UnknownMessageType(
            f"message type '{msgtype}' cannot be imported ({exc}); build/source the workspace that "
            f"provides package '{package}'") from exc


def _package_msg_files(package: str) -> list[Path]:
    try:
        share = Path(get_package_share_directory(package))
    except PackageNotFoundError as exc:
        raise UnknownMessageType(
            f"package '{package}' is not in the ament index (AMENT_PREFIX_PATH); source its install") from exc
    return sorted((share / "msg").glob("*.msg"))


def register_package(store: Typestore, package: str) -> None:
    """Register every .msg of an installed package (and, on demand, the packages it uses)."""
    types = {}
    for path in _package_msg_files(package):
        types.update(get_types_from_msg(path.read_text(), f"{package}/msg/{path.stem}"))
    missing_packages = set()
    for fields in (t[1] for t in types.values()):
        for _, ftype in fields:
            for ref in re.findall(r"[A-Za-z_][A-Za-z0-9_]*/msg/[A-Za-z_][A-Za-z0-9_]*", repr(ftype)):
                if ref not in store.fielddefs and ref not in types:
                    missing_packages.add(ref.split("/")[0])
    for dep in sorted(missing_packages - {package}):
        register_package(store, dep)
    store.register(types)


def make_typestore(packages: tuple[str, ...] = ("dnk_msgs",)) -> Typestore:
    """Jazzy's standard types plus the given installed interface packages."""
    store = get_typestore(Stores.ROS2_JAZZY)
    for package in packages:
        register_package(store, package)
    return store


def ensure_registered(store: Typestore, msgtype: str) -> None:
    """Make `msgtype` known to `store`, registering its package from the ament index if needed."""
    if msgtype in store.fielddefs:
        return
    register_package(store, msgtype.split("/")[0])
    if msgtype not in store.fielddefs:
        raise UnknownMessageType(f"message type '{msgtype}' has no .msg file in its package's share/msg")
