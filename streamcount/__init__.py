"""streamcount: exact, running word counts over a stream of Chinese text files."""

__version__ = "0.1.0"
