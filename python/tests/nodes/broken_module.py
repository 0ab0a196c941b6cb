"""A node module that fails to import (for --list-types and init_error tests)."""

raise ImportError("this module is broken on purpose")
