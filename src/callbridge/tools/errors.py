"""The two errors a tool module can cause at start-up, under `callbridge.errors.ConfigError`.

    ConfigError
    ├── ToolDefinitionError   a function cannot become a tool (annotation, name, signature)
    └── ToolLoadError         a tools module cannot be imported or holds no tools

Both carry a one-line message naming the function or module (and the parameter), so the CLI prints
them as-is and start-up stops. Nothing here is raised while a call runs: `ToolRegistry.run` turns
every failure of a tool into an outcome the model can read.
"""

from __future__ import annotations

from callbridge.errors import ConfigError


class ToolDefinitionError(ConfigError):
    """A function cannot become a tool; the message names the function and the parameter."""


class ToolLoadError(ConfigError):
    """A tools module cannot be imported, or it defines no tools."""
