"""Image operations; importing this package registers every one of them."""

from processor.operations import color, filters, geometry, gradients
from processor.operations.registry import (
    NoParams,
    Operation,
    Params,
    all_operations,
    get_operation,
    operation,
)

__all__ = [
    "NoParams",
    "Operation",
    "Params",
    "all_operations",
    "color",
    "filters",
    "geometry",
    "get_operation",
    "gradients",
    "operation",
]
