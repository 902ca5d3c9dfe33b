"""The domain rules as pure functions: no Faust, no Kafka, no HTTP."""
