"""The live web viewer: ``--sink http://127.0.0.1:8080`` on ``edge run``."""

from edge.viewer.sink import ViewerSink, parse_viewer_uri

__all__ = ["ViewerSink", "parse_viewer_uri"]
