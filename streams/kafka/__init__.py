"""Kafka connections, topic reading and the Kafka errors: shared by worker and connectors."""
