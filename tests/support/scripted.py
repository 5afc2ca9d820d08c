"""The scripted legacy backend now ships in the package (`redaction-proxy test` runs it); the tests'
old import path stays."""

from proxy.policytest.backend import Received, Script, is_facts_query, make_scripted_app

__all__ = ["Received", "Script", "is_facts_query", "make_scripted_app"]
