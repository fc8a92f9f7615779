"""Sanctions lists: parsers for the published file formats and name normalisation and matching.

Django-free, like the engine: the services in compliance/services/sanctions_lists.py store what
the parsers read and screen parties with the matcher."""
