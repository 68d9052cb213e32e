"""Provider adapter tests (package, so module names like test_http do not clash across test dirs)."""
