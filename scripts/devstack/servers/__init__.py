"""Backing servers, one module each, all behind the `Server` interface."""
