"""Image operations; importing this package registers every one of them."""

from processor.operations import filters, geometry, gradients, tone
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
    "filters",
    "geometry",
    "get_operation",
    "gradients",
    "operation",
    "tone",
]
