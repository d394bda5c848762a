"""A run as a whole: the config check (``schema``), what a task needs (``recipes``), training
(``training``), the run record (``record``), the stored config (``stored_config``), a finished
run loaded again (``loading``) for ``evaluation``, ``inference`` and ``export``, finished runs
side by side (``comparison``), and sweeps (``sweep``). Imports the library packages; never imports ``framework.cli``."""
