"""remotemedia-multiprocess: the Python side of @remotemedia/multiprocess.

Data plane: :class:`RuntimeData` (the wire codec of docs/wire-format.md) and
channels over iceoryx2 shared memory (docs/channel-protocol.md).
"""

from __future__ import annotations

from ._iox import IoxEnv, new_isolated_env, remove_env_files, sweep_stale
from ._native_lib import library_path as native_library_path
from .channel import Channel, Loan, Publisher, RawSample, Subscriber
from .client import Session as Session
from .errors import (
    BackpressureTimeoutError,
    ChannelError,
    MultiprocessError,
    NodeProcessError,
    WireFormatError,
    WireFormatReason,
)
from .node import MultiprocessNode, register_node, registered_types
from .pipeline import Pipeline, PipelineValidationError
from .runtime_data import RuntimeData

__version__ = "0.1.0"

# Other modules (node SDK, runner, pipeline) add their exports below.
__all__ = [
    "BackpressureTimeoutError",
    "Channel",
    "ChannelError",
    "IoxEnv",
    "Loan",
    "MultiprocessError",
    "MultiprocessNode",
    "NodeProcessError",
    "Pipeline",
    "PipelineValidationError",
    "Publisher",
    "RawSample",
    "RuntimeData",
    "Subscriber",
    "WireFormatError",
    "WireFormatReason",
    "native_library_path",
    "new_isolated_env",
    "register_node",
    "registered_types",
    "remove_env_files",
    "sweep_stale",
]
