"""The ``kinema`` command line: thin clients of the same core as the server."""
