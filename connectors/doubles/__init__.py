"""Test doubles of the systems lrx talks to (the local stack, tests); never in production."""
