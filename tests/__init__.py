"""A package, so that a module that tests import (tests.conftest, tests.e2e.test_replies) is the module pytest
collected: imported, and its asserts rewritten, once per process rather than twice."""
