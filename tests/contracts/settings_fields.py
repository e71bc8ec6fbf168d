"""Which environment variables a service reads: its settings class's fields."""

import importlib
import inspect

from pydantic_settings import BaseSettings


def settings_class(service: str) -> type[BaseSettings]:
    """The one settings class `socialhub.<service>.settings` defines."""
    module = importlib.import_module(f"socialhub.{service}.settings")
    found = [
        cls
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, BaseSettings) and cls.__module__ == module.__name__
    ]
    assert len(found) == 1, found
    return found[0]


def read_env(cls: type[BaseSettings]) -> dict[str, str]:
    """Environment variable -> field name, as pydantic-settings reads them."""
    prefix = cls.model_config.get("env_prefix", "")
    assert not any(field.alias or field.validation_alias for field in cls.model_fields.values())
    return {f"{prefix}{name}".upper(): name for name in cls.model_fields}
