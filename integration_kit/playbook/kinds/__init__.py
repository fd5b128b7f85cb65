"""The kinds of integration, one subpackage each (``http``, ``webhook``, ``queue``), and the table of them."""

__all__: list[str] = []
