"""convscope: a workbench for seeing inside convolutional networks."""

__version__ = "0.1.0"
