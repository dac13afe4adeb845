"""Modules, parameters, layers and initializers."""

from .init import INITIALIZERS, get_initializer
from .layers import Dense, Sequential
from .module import Module, Parameter

__all__ = ["INITIALIZERS", "Dense", "Module", "Parameter", "Sequential", "get_initializer"]
