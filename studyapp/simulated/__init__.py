"""Simulated participants for ``manage.py simulate_participants``: bots that take a study over HTTP."""
