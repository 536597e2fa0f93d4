"""Vocabularies the rule table speaks in: kinds of failures, never one project's message.

Each entry names a kind that many projects print the same way: a pytest or mock API used
the way a removed version allowed, a fixture a plugin provides, a module the standard
library or setuptools removed, a system library a binary wheel loads. The rules (rules/)
combine them with where the code raised (test file, application, library) to
pick a category. tests/triage/test_triage_rules.py checks that no pattern here or in the
rule table matches exactly one item of the labelled corpus: a pattern that fits one
failure is memorised, not general.
"""

from __future__ import annotations

# Test code using a testing API the way an older version allowed (removed or misspelt):
# mock assertions that are not assertions, unittest aliases removed in Python 3.12,
# pytest.warns(None), fixtures called as functions, nose-style setup, mock.patch targets
# that no longer exist, testing modules reached through a missing import.
TEST_API_MISUSE = (
    r"is not a valid assertion",
    r"has no attribute '(?:assert[A-Z_]\w*|called_\w+)'",
    r"exceptions must be derived from Warning, not",
    r"Fixtures are not meant to be called directly",
    r"does not have the attribute '",
    r"module '(?:unittest|mock|pytest)' has no attribute",
)

# Fixtures that pytest plugins provide: "not found" means the plugin is not installed.
PLUGIN_FIXTURES = frozenset(
    {
        # pytest-mock
        "mocker",
        "class_mocker",
        "module_mocker",
        "package_mocker",
        "session_mocker",
        # requests-mock, pytest-httpx, pytest-httpserver, pytest-localserver
        "requests_mock",
        "httpx_mock",
        "httpserver",
        "httpsserver",
        # pytest-aiohttp
        "aiohttp_client",
        "aiohttp_server",
        "aiohttp_raw_server",
        # pytest-benchmark, pytest-freezer, pytest-django, pytest-docker, pytest-xprocess
        "benchmark",
        "freezer",
        "django_db_setup",
        "admin_client",
        "live_server",
        "docker_services",
        "xprocess",
    }
)

# Modules the standard library or setuptools removed: importing one is code written for
# an older environment (whose code decides: the test's or the application's).
REMOVED_MODULES = frozenset(
    {
        "distutils",
        "imp",
        "asynchat",
        "asyncore",
        "smtpd",
        "pkg_resources",
        "cgi",
        "telnetlib",
    }
)

# Package names of the test tree itself: failing to import one is the test layout.
TEST_TREE_MODULES = frozenset({"tests", "test", "conftest", "testing"})
