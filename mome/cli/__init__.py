"""The ``mome`` command line; the entry point is ``mome.cli.main:main``.

Nothing is imported here, so that ``python -m mome.cli.main`` (how the Slicer modules start the
engine) runs the module once, without runpy's double-import warning.
"""
