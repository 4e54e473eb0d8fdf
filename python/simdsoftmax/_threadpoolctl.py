"""Make simdsoftmax's thread pool visible to threadpoolctl.

``threadpoolctl.threadpool_limits(1)`` then limits simdsoftmax together with
BLAS and OpenMP, and ``threadpool_info()`` lists it. threadpoolctl finds
libraries by file name among the loaded shared objects and drives them
through C symbols; the extension exports ``simdsoftmax_get_num_threads`` and
``simdsoftmax_set_num_threads`` for that. Registered at import when
threadpoolctl is installed; nothing happens otherwise.
"""

from __future__ import annotations

try:
    import threadpoolctl
except ImportError:  # optional dependency
    threadpoolctl = None


def _register() -> bool:
    if threadpoolctl is None or not hasattr(threadpoolctl, "register"):
        return False

    class SimdsoftmaxController(threadpoolctl.LibController):
        """threadpoolctl controller for simdsoftmax's kernel threads."""

        user_api = "simdsoftmax"
        internal_api = "simdsoftmax"
        filename_prefixes = ("_core",)
        check_symbols = ("simdsoftmax_get_num_threads", "simdsoftmax_set_num_threads")

        def get_num_threads(self):
            return self.dynlib.simdsoftmax_get_num_threads()

        def set_num_threads(self, num_threads):
            self.dynlib.simdsoftmax_set_num_threads(int(num_threads))

        def get_version(self):
            from . import __version__

            return __version__

    threadpoolctl.register(SimdsoftmaxController)
    return True


registered = _register()
