"""A node module that imports a package that is not installed."""

import remotemedia_no_such_dependency  # noqa: F401
