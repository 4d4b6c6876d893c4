# The native module is declared here because cffi_modules is a setup() keyword.
from setuptools import setup

setup(cffi_modules=["ndisemu/_build.py:ffibuilder"])
