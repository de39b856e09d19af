"""Notices to applicants and citizens (DOMAIN.md §10, DESIGN.md §5): templates, delivery rules and channels.

Nothing here imports ``api.schema`` or ``api.routes`` (DESIGN.md §2).
"""
