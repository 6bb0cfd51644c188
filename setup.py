"""The compiled part of the package (everything else is in pyproject.toml): the isochrone
band tracer, gis_service/access/_band.c — plain C through the buffer protocol, built by
the compiler during ``pip install -e .`` (why: gis_service/access/isochrone.py)."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "gis_service.access._band",
            sources=["gis_service/access/_band.c"],
            extra_compile_args=["-O3"],
        )
    ]
)
