"""LMS input: Moodle events, xAPI statements, our JSON, user CSVs and course subscriptions."""
