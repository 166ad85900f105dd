"""Speed benchmarks of jaxgan (outside the package): `python -m benchmarks.bench --help`."""
