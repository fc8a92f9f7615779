"""Compute-to-data, the Django-free part: check a buyer's SQL (sqlcheck), run it in DuckDB with its
guards on (engine), and decide what may leave (release). The marketplace services wire these to
offers, grants, budgets and the audit trail (marketplace/services/compute.py)."""
