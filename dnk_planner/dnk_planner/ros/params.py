"""Declare a pydantic config model's fields as ROS parameters and read them back validated.

One model per node keeps units, ranges and defaults in one place (the Field descriptions);
this module turns each field into a ROS parameter with a descriptor (description, numeric
range, read-only) so `--ros-args -p`, `--params-file` and `ros2 param describe` all see the
same contract, and turns pydantic's validation errors into one message naming the parameter
and how to fix it.
"""
from __future__ import annotations

import array
import typing
from typing import Any, TypeVar

import annotated_types
from pydantic import BaseModel, ValidationError
from collections.abc import Callable

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy.node import Node
from rclpy.parameter import Parameter

ConfigT = TypeVar("ConfigT", bound=BaseModel)


class ParameterConfigError(ValueError):
    """A ROS parameter value violates the node's config model (message names field and fix)."""


def _bounds(metadata: list[Any]) -> tuple[float | None, float | None]:
    """Inclusive bounds (exclusive ones are left to pydantic: descriptors cannot say 'open')."""
    low = high = None
    for item in metadata:
        if isinstance(item, annotated_types.Ge):
            low = item.ge
        elif isinstance(item, annotated_types.Le):
            high = item.le
    return low, high


def _descriptor(name: str, field: Any) -> ParameterDescriptor:
    annotation = field.annotation
    description = field.description or ""
    if typing.get_origin(annotation) is typing.Literal:
        description += f" One of: {', '.join(map(str, typing.get_args(annotation)))}."
    desc = ParameterDescriptor(name=name, description=description, read_only=True)
    low, high = _bounds(field.metadata)
    if annotation is float:
        # Accept `-p rate_hz:=100` (an integer) for a float field; pydantic converts it.
        desc.dynamic_typing = True
        if low is not None and high is not None:
            desc.floating_point_range = [FloatingPointRange(from_value=float(low), to_value=float(high), step=0.0)]
    elif annotation is int and low is not None and high is not None:
        desc.integer_range = [IntegerRange(from_value=int(low), to_value=int(high), step=0)]
    return desc


def _ros_value(field: Any) -> Any:
    """The declared default; an empty list needs an explicit type (ROS cannot infer it)."""
    default = field.get_default(call_default_factory=True)
    if isinstance(default, (list, tuple)) and not default:
        item = typing.get_args(field.annotation)[0]
        return {float: Parameter.Type.DOUBLE_ARRAY, int: Parameter.Type.INTEGER_ARRAY,
                str: Parameter.Type.STRING_ARRAY, bool: Parameter.Type.BOOL_ARRAY}[item]
    if isinstance(default, tuple):
        return list(default)
    return default


def declare_parameters(node: Node, model: type[BaseModel], read_only: bool = True) -> None:
    """Declare every field of `model` on `node` (default, description, range).

    Raises ParameterConfigError naming the parameter and the fix when an override from `-p`
    or a params file has the wrong type. Lifecycle nodes pass read_only=False so a new value
    can be set between cleanup and the next configure.
    """
    for name, field in model.model_fields.items():
        desc = _descriptor(name, field)
        desc.read_only = read_only
        try:
            node.declare_parameter(name, _ros_value(field), desc)
        except Exception as exc:  # rclpy raises several exception types for bad overrides
            raise ParameterConfigError(
                f"parameter '{name}' of node '{node.get_name()}': {exc}. Fix: pass a valid value with "
                f"--ros-args -p {name}:=<value> or in the params file ({field.description})") from exc


def _value(param: Parameter) -> Any:
    value = param.value
    return list(value) if isinstance(value, (list, tuple, array.array)) else value


def _validate(node: Node, model: type[ConfigT], values: dict[str, Any]) -> ConfigT:
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(
            f"parameter '{'.'.join(map(str, err['loc']))}' = {err.get('input')!r}: {err['msg']}"
            for err in exc.errors())
        raise ParameterConfigError(
            f"node '{node.get_name()}': {problems}. Fix: pass a valid value with --ros-args -p "
            f"<name>:=<value> or in the params file under '{node.get_name()}: ros__parameters:'") from exc


def _current_values(node: Node, model: type[BaseModel]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in model.model_fields:
        if node.has_parameter(name):
            param = node.get_parameter(name)
            if param.type_ != Parameter.Type.NOT_SET:
                values[name] = _value(param)
    return values


def read_config(node: Node, model: type[ConfigT]) -> ConfigT:
    """The declared parameters validated as `model` (ParameterConfigError names field and fix)."""
    return _validate(node, model, _current_values(node, model))


def validate_on_set(node: Node, model: type[BaseModel], on_refused: Callable[[], None] | None = None) -> None:
    """Refuse a parameter change (`ros2 param set`, set_parameters) that would make `model` invalid,
    when it is set: the caller gets the reason naming the field, the old value stays."""

    def check(params: list[Parameter]) -> SetParametersResult:
        values = _current_values(node, model)
        values.update({p.name: _value(p) for p in params if p.name in model.model_fields})
        try:
            _validate(node, model, values)
        except ParameterConfigError as err:
            if on_refused is not None:
                on_refused()
            return SetParametersResult(successful=False, reason=str(err))
        return SetParametersResult(successful=True)

    node.add_on_set_parameters_callback(check)


def declare_config(node: Node, model: type[ConfigT]) -> ConfigT:
    """Declare every field of `model` on `node` and return the validated config (plain nodes)."""
    declare_parameters(node, model)
    return read_config(node, model)
