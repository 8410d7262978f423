"""vitamin: the ViTamin model zoo, managed (`vitamin --help`, docs/)."""

__version__ = "0.1.0"
