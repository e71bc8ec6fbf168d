"""Runs SocialHub on one machine: installs and supervises real backing servers and the services.

Used by `make up` / `make down` / `make status` / `make restart` and by the test fixtures, so
that the tests run against exactly what a developer runs.
"""
