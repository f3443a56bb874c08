"""The bundled sample city: data files and their provenance (see README.md)."""
