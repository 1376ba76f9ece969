"""Plugins defined only in the tests: each module registers one plugin, as a user's would."""
